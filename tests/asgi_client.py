"""An httpx client on a FastAPI app with its lifespan running (shared by the API and A/B tests).

The tests' API key: the root conftest puts ``RECSYS_API_KEYS=tests:<TEST_API_KEY>`` in the
environment (so every ``Settings`` of the suite has it), and the client sends it. The suite runs
as a deployment does (``RECSYS_ENVIRONMENT`` unset: production), so the conftest also sets a
real request-id secret, ``TEST_REQUEST_ID_SECRET``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx

TEST_API_KEY = "tests-key-0123456789abcdef"
TEST_API_KEYS = f"tests:{TEST_API_KEY}"
KEY_HEADERS = {"X-API-Key": TEST_API_KEY}
TEST_REQUEST_ID_SECRET = "tests-request-id-secret-0123456789abcdef"
SHUTDOWN_SECONDS = 60  # an app's lifespan exit in tests (a healthy one takes well under a second)


async def open_client(app, headers: dict | None = None):
    """Run the app's lifespan and give an httpx client on it (sending the tests' API key unless
    ``headers`` says otherwise); returns (client, closer)."""
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test",
                               headers=KEY_HEADERS if headers is None else headers)

    async def close():
        await client.aclose()
        try:  # a shutdown that never ends would stall the whole run: a failure naming it instead
            await asyncio.wait_for(lifespan.__aexit__(None, None, None), SHUTDOWN_SECONDS)
        except TimeoutError:
            tasks = [t.get_coro() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            raise AssertionError(f"the app's shutdown did not finish in {SHUTDOWN_SECONDS} s; "
                                 f"tasks still running: {tasks}") from None

    return client, close


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """The API under a real uvicorn server in a thread (its own event loop); ``with`` gives its base URL."""

    def __init__(self, app, port: int | None = None):
        import uvicorn

        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=20)


class AppClient:
    """``async with AppClient(settings) as api``: an ASGI client of ``create_app(settings)`` (no background
    refresh), the app at ``api.app``."""

    def __init__(self, settings):
        self.settings = settings

    async def __aenter__(self):
        from recsys.api.app import create_app

        app = create_app(self.settings, refresh_in_background=False)
        client, self._close = await open_client(app)
        client.app = app
        return client

    async def __aexit__(self, *exc):
        await self._close()

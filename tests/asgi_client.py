"""An httpx client on a FastAPI app with its lifespan running (shared by the API and A/B tests)."""

from __future__ import annotations

import httpx


async def open_client(app):
    """Run the app's lifespan and give an httpx client on it; returns (client, closer)."""
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")

    async def close():
        await client.aclose()
        await lifespan.__aexit__(None, None, None)

    return client, close

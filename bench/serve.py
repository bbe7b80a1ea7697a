"""Run an app under uvicorn with explicit server settings: the API or its trivial reference.

``python -m bench.serve --app recsys|trivial --port P --workers W --loop uvloop --http httptools``

The trivial reference is the same stack (FastAPI, uvicorn with the same workers,
event loop and HTTP parser, the API's request middleware, orjson) with one
route ``GET /trivial`` answering a constant body: a real ``/recommendations``
answer read from ``BENCH_TRIVIAL_BODY`` (a JSON file), so that both encode the
same JSON. ``/trivial/stdjson`` answers it with Starlette's ``JSONResponse``
(stdlib json) and ``/trivial/model`` through a declared ``response_model``
(FastAPI's validation and serialisation): the JSON encoder choices.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

APPS = {"recsys": "recsys.api.app:create_app", "trivial": "bench.serve:create_trivial_app"}


def create_trivial_app():
    from fastapi import FastAPI
    from starlette.responses import JSONResponse

    from recsys.abtest.request_ids import RequestIdSigner
    from recsys.api.errors import OrjsonResponse
    from recsys.serving.metrics import ServingMetrics
    from recsys.api.middleware import RequestContextMiddleware
    from recsys.api.schemas import RecommendationsResponse

    path = os.environ.get("BENCH_TRIVIAL_BODY")
    body = json.loads(Path(path).read_text()) if path and Path(path).exists() else {"items": [], "model_version": None,
                                                            "source": "trending", "request_id": ""}
    app = FastAPI(title="trivial reference")
    app.add_middleware(RequestContextMiddleware, metrics=ServingMetrics(), signer=RequestIdSigner("bench-trivial"))

    @app.get("/trivial")
    async def trivial():
        return OrjsonResponse(body)

    @app.get("/trivial/stdjson")
    async def trivial_stdjson():
        return JSONResponse(body)

    @app.get("/trivial/model", response_model=RecommendationsResponse)
    async def trivial_model():
        return body

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=sorted(APPS), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--loop", default="uvloop", choices=["asyncio", "uvloop"])
    parser.add_argument("--http", default="httptools", choices=["h11", "httptools"])
    parser.add_argument("--backlog", type=int, default=2048)
    args = parser.parse_args(argv)
    uvicorn.run(APPS[args.app], factory=True, host=args.host, port=args.port, workers=args.workers,
                loop=args.loop, http=args.http, backlog=args.backlog, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

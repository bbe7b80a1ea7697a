"""The ingestion load generator, a separate process: N events at a fixed concurrency, every answer kept.

``--mode api``: POST each event to the API (``/events`` with a client ``event_id``);
an event counts as acknowledged when the answer is 200 ``logged`` and not a duplicate.
With ``--batch N`` each request carries N events to ``/events/batch`` and each event
counts by its own result (latencies are then per request).
``--mode pg``: the reference, the same rows as single-row INSERT transactions straight
into PostgreSQL with asyncpg (one commit each, as the API does): the durable-write
limit of this database at this concurrency.
Prints one JSON line: sent, acknowledged, errors, seconds, latency percentiles; the
acknowledged ids go to ``--acked-file`` for the count check.

``python -m bench.ingest_client --mode api --url http://127.0.0.1:18080 --events 5000 --concurrency 32 [--batch 100] ...``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench.common import BENCH_API_KEY

EVENT_TYPES = ("VIEW", "VIEW", "VIEW", "CLICK", "CLICK", "ADD_TO_CART", "PURCHASE")


def event(i: int, prefix: str, users: int, products: int, now_ms: int) -> dict:
    """The i-th event: deterministic user, product and type; a unique client event id."""
    kind = EVENT_TYPES[i % len(EVENT_TYPES)]
    body = {"user_id": 1 + (i * 7919) % users, "product_id": 1 + (i * 104_729) % products,
            "timestamp": now_ms - (i % 1000), "session_id": f"{prefix}-s{i // 20}", "event_id": f"{prefix}-{i}",
            "event_type": kind}
    if kind == "PURCHASE":
        body["price"] = 9.99
    return body


async def run(args, send) -> dict:
    """Send ``args.events`` events with at most ``args.concurrency`` requests in flight, ``args.batch`` events
    per request (one when 0); every one is awaited. ``send`` answers one (ok, error) per event."""
    now_ms = int(time.time() * 1000)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.events):
        queue.put_nowait(i)
    acked, errors, latencies = [], {}, []

    async def worker():
        while not queue.empty():
            n = min(max(args.batch, 1), queue.qsize())
            bodies = [event(queue.get_nowait(), args.prefix, args.users, args.products, now_ms) for _ in range(n)]
            start = time.perf_counter()
            answers = await send(bodies)
            latencies.append(time.perf_counter() - start)
            for body, (ok, err) in zip(bodies, answers):
                if ok:
                    acked.append(body["event_id"])
                else:
                    errors[err] = errors.get(err, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    seconds = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e3

    if args.acked_file:
        with open(args.acked_file, "w") as f:
            f.write("\n".join(acked) + "\n")
    return {"sent": args.events, "acked": len(acked), "errors": errors, "seconds": seconds,
            "events_per_s": len(acked) / seconds, "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
            "concurrency": args.concurrency, "batch": args.batch or None}


async def via_api(args) -> dict:
    import aiohttp

    conn = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(args.url, connector=conn, timeout=aiohttp.ClientTimeout(total=30),
                                     headers={"X-API-Key": args.api_key}) as http:
        def answer(data: dict) -> tuple[bool, str]:
            if data.get("status") == "logged" and not data.get("duplicate"):
                return True, ""
            return False, "duplicate" if data.get("status") == "logged" else f"rejected {data.get('code')}"

        async def send(bodies: list[dict]) -> list[tuple[bool, str]]:
            path, payload = ("/events/batch", {"events": bodies}) if args.batch else ("/events", bodies[0])
            try:
                async with http.post(path, json=payload) as resp:
                    data = await resp.json(content_type=None)
                    if resp.status != 200:
                        return [(False, f"http {resp.status}")] * len(bodies)
                    return [answer(x) for x in data["results"]] if args.batch else [answer(data)]
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                return [(False, type(exc).__name__)] * len(bodies)

        return await run(args, send)


async def via_pg(args) -> dict:
    import asyncpg

    size = args.pool or args.concurrency
    pool = await asyncpg.create_pool(args.dsn, min_size=size, max_size=size)
    sql = ('INSERT INTO user_events (user_id, product_id, event_type, session_id, "timestamp", price, '
           "client_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7)")

    async def send(bodies: list[dict]) -> list[tuple[bool, str]]:
        (b,) = bodies
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(sql, b["user_id"], b["product_id"], b["event_type"], b["session_id"],
                                   b["timestamp"], b.get("price"), b["event_id"])
            return [(True, "")]
        except (asyncpg.PostgresError, OSError) as exc:
            return [(False, type(exc).__name__)]

    try:
        return await run(args, send)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["api", "pg"], required=True)
    parser.add_argument("--url", default="http://127.0.0.1:18080")
    parser.add_argument("--dsn", default="")
    parser.add_argument("--api-key", default=BENCH_API_KEY, help="X-API-Key of --mode api")
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--products", type=int, required=True)
    parser.add_argument("--prefix", required=True, help="client event ids are PREFIX-<i>")
    parser.add_argument("--acked-file", default="")
    parser.add_argument("--batch", type=int, default=0,
                        help="--mode api: events per request to /events/batch (0: one per request to /events)")
    parser.add_argument("--pool", type=int, default=0,
                        help="--mode pg: connections (default: --concurrency; fewer when the server has no more free)")
    args = parser.parse_args(argv)
    if args.batch and args.mode != "api":
        parser.error("--batch is for --mode api")
    result = asyncio.run(via_api(args) if args.mode == "api" else via_pg(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

"""The ingestion load generator: deterministic unique events, every answer counted."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from bench.ingest_client import event, run


def test_events_are_deterministic_with_unique_ids_and_purchases_priced():
    evs = [event(i, "p", users=100, products=50, now_ms=1_000_000) for i in range(500)]
    assert len({e["event_id"] for e in evs}) == 500
    assert evs == [event(i, "p", users=100, products=50, now_ms=1_000_000) for i in range(500)]
    assert all(1 <= e["user_id"] <= 100 and 1 <= e["product_id"] <= 50 for e in evs)
    assert all(("price" in e) == (e["event_type"] == "PURCHASE") for e in evs)


@pytest.mark.parametrize(("batch", "requests"), [(0, 100), (8, 13)])
def test_run_sends_every_event_once_and_keeps_failures_apart(tmp_path, batch, requests):
    seen, sizes = [], []

    async def send(bodies):
        seen.extend(b["event_id"] for b in bodies)
        sizes.append(len(bodies))
        await asyncio.sleep(0)
        return [(n % 10 != 0, "" if n % 10 else "http 503") for n in (int(b["event_id"].split("-")[1]) for b in bodies)]

    acked_file = tmp_path / "acked.txt"
    args = argparse.Namespace(events=100, concurrency=7, prefix="t", users=10, products=10,
                              acked_file=str(acked_file), batch=batch)
    out = asyncio.run(run(args, send))
    assert sorted(seen) == sorted(f"t-{i}" for i in range(100))
    assert len(sizes) == requests and max(sizes) == max(batch, 1)  # batches of 8, the last one of 4
    assert out["sent"] == 100 and out["acked"] == 90 and out["errors"] == {"http 503": 10}
    assert len(acked_file.read_text().split()) == 90

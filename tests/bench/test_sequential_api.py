"""The sequential model's API benchmark on a tiny shop: it measures the paths it names.

A cache hit runs no model (the first round's hits come from the final answers precompute wrote, later
ones re-rank the list the last re-score wrote), every call after a click runs the encoder exactly once,
the hybrid reference is answered by the hybrid model, and a call of the wrong kind stops the run.
"""

from __future__ import annotations

import pytest

from bench.report_sequential import api_part, markdown, sequential_headline
from bench.sequential_api import WrongPathError, api_latency, api_settings, check_path
from pg_helpers import flushed_redis, fresh_database
from shop_dates import REDIS_URL

pytestmark = pytest.mark.integration
USERS, ROUNDS = 5, 2  # 10 hits and 10 re-scores: 20 timed calls


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sequential-api")
    with fresh_database("recsys_test_seqapi") as url, flushed_redis(REDIS_URL) as redis_client:
        settings = api_settings(url, REDIS_URL, str(root / "artifacts"), var_dir=root / "var",
                                personalized_min_events=20)
        yield api_latency(settings, redis_client, products=500, shop_users=200, users=USERS, rounds=ROUNDS,
                          hybrid=True, seed=3)


def test_a_hit_runs_no_model_and_a_changed_sequence_runs_it_once_per_request(tiny):
    calls = tiny["calls"]
    assert tiny["users"] == USERS and tiny["products"] == 500
    hit, changed = calls["hit"], calls["changed"]
    assert hit["n"] == changed["n"] == USERS * ROUNDS
    assert hit["encoder_runs"] == {"total": 0, "min": 0, "max": 0} and hit["model_loads"] == 0
    assert changed["encoder_runs"] == {"total": USERS * ROUNDS, "min": 1, "max": 1} and changed["model_loads"] == 0
    # round 1: the answers precompute wrote for the seeded sessions; round 2: the re-scored lists, re-ranked
    assert calls["hit_answer"]["n"] == calls["hit_answer"]["from_cached_answer"] == USERS
    assert calls["hit_list"]["n"] == USERS and calls["hit_list"]["from_cached_answer"] == 0
    assert changed["from_cached_answer"] == 0
    assert 0 < hit["p50_ms"] <= hit["p99_ms"] and 0 < changed["p50_ms"] <= changed["p99_ms"]


def test_the_hybrid_reference_is_answered_by_the_hybrid_model(tiny):
    ref = tiny["calls"]["hybrid_hit"]
    assert ref["n"] == USERS * ROUNDS and ref["encoder_runs"]["total"] == 0
    assert tiny["hybrid"]["model_id"] != tiny["shop"]["model_id"]


def test_a_call_of_the_wrong_kind_stops_the_benchmark():
    call = {"user_id": 7, "kind": "hit", "source": "personalized", "model_version": "m", "encoder_runs": 0,
            "model_loads": 0}
    check_path(call, "m")
    for wrong in ({"encoder_runs": 1}, {"source": "trending"}, {"model_version": "other"}, {"model_loads": 1}):
        with pytest.raises(WrongPathError):
            check_path({**call, **wrong}, "m")
    with pytest.raises(WrongPathError, match="expected 1"):
        check_path({**call, "kind": "changed"}, "m")


def test_the_report_shows_both_calls_and_the_target(tiny):
    api = {**tiny, "date": "2026-12-05T14:00:00+00:00", "command": "python -m bench.bench_sequential --part api"}
    scoring = {"encoder": {}, "score_next": {}, "candidates": {}}
    for row in scoring.values():
        row.update(p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, cpu_p50_ms=1.0, cpu_p95_ms=2.0)
    doc = {"date": "2026-12-05T13:00:00+00:00", "command": "python -m bench.bench_sequential", "length": 20,
           "products": 500, "dim": 64, "layers": 2, "max_len": 50, "onnxruntime": "1", "calls": 10, "warmup": 50,
           "candidates": 500, "candidate_recall_at_10": 0.1, "latency": scoring, "api": api, "loadavg_end": [1, 1, 1],
           "machine": {"cpu": "x", "cores": 2, "memory_gib": 1, "python": "3", "loadavg_1_5_15": [1, 1, 1]}}
    text = api_part(doc)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 5  # header, hit, hit from answer, hit re-ranked, changed, hybrid
    assert "| 0–0 (0 in all) |" in rows[1] and f"| 1–1 ({USERS * ROUNDS} in all) |" in rows[4]
    assert "Issue 14's target" in text and "at 500 products p50 1.00 ms (met)" in text
    assert "after a click (re-scored) p50" in sequential_headline(doc)
    assert "The first timed call of each app: sequential hit" in text
    assert text in markdown(doc) and api_part({**doc, "api": None}) == ""

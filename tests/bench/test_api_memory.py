"""The API memory benchmark's pieces on a tiny model: both formats published, one round of worker
processes per mode (their reports and memory readings), the old layout's lookups, the per-user slope."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import api_memory_worker as W
from bench.bench_api_memory import figures, one_round, per_unit, publish_synthetic, summarise
from recsys.serving.model_cache import load_served
from recsys.artifacts import LocalArtifactStore


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("api-memory")
    files = publish_synthetic(LocalArtifactStore(root / "artifacts"), "m", 3000, 200, 9, seed=1)
    return root, files


def test_proc_memory_reads_this_process():
    mem = W.proc_memory()
    assert set(mem) == {*W.STATUS_FIELDS, *W.ROLLUP_FIELDS}
    assert mem["VmHWM"] >= mem["VmRSS"] == mem["RssAnon"] + mem["RssFile"] + mem["RssShmem"]
    # a fresh process touches 64 MiB: in a long-lived test worker (1.6 GB, its allocator's free memory already
    # resident) a new block may reuse resident pages, and RssAnon grew by 1.8 MB in one CI run
    grown = subprocess.run([sys.executable, "-c", (
        "import numpy as np; from bench import api_memory_worker as W; before = W.proc_memory()['RssAnon']; "
        "block = np.ones(64 * 2**20, dtype=np.uint8); print(W.proc_memory()['RssAnon'] - before)")],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    assert int(grown) > 60 * 2**20


def test_both_formats_hold_the_same_model_and_the_old_layout_finds_every_user(tiny):
    root, files = tiny
    store = LocalArtifactStore(root / "artifacts")
    assert files["npy_bytes"] > 3000 * 9 * 4 and files["npz_bytes"] > 0
    old, new = W.load_old(store, "m"), load_served(store, "m", root / "check-cache",
                                                           W.recorded_checksums(store, "m"))
    np.testing.assert_array_equal(old.emb.user_ids, new.user_ids)
    np.testing.assert_array_equal(old.emb.item_vectors, new.item_vectors)
    for uid in new.user_ids[::97]:
        np.testing.assert_array_equal(old.user_vector(int(uid)), new.user_vector(int(uid)))
        assert old.emb.score_user(old.user_vector(int(uid)), 10) == new.score_user(new.user_vector(int(uid)), 10)
    assert old.user_vector(2) is None and new.user_vector(2) is None  # ids are 1, 4, 7, ...
    np.testing.assert_allclose(np.linalg.norm(old.item_unit, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("mode", ["old", "new"])
def test_one_round_measures_a_first_and_a_second_worker(tiny, mode):
    root, _ = tiny
    args = argparse.Namespace(queries=20, lookups=200)
    out = one_round(mode, root / "artifacts", "m", root / "cache", args)
    first, second = out["first"], out["second"]
    assert first["mode"] == second["mode"] == mode
    assert first["lookup_score_ms"]["p50"] > 0 and first["lookups"] == 200 and first["queries"] == 20
    assert out["first_after_second"]["Pss"] > 0
    if mode == "new":
        assert (root / "cache" / "m").is_dir()
        # the second reuses the first's download (seen from the cache folder, not from load times, which
        # another process on the machine can invert: 33 vs 25 ms in a pytest -n 2 run)
        assert first["cache_reused"] is False and second["cache_reused"] is True
    summary = summarise([out, out])
    assert summary["first"]["rss"]["median"] == figures(first)["rss"] == first["memory_queried"]["VmRSS"]
    assert summary["node_pss_two_workers"]["median"] == \
        out["first_after_second"]["Pss"] + second["memory_queried"]["Pss"]


def test_per_user_bytes_is_the_slope_between_the_two_largest_sizes():
    def size(users, rss):
        s = {"median": rss}
        return {"users": users, **{m: {"first": {"rss": s, "pss": s, "anon": s}} for m in ("old", "new")}}

    out = per_unit([size(10, 0.0), size(1000, 1000.0), size(3000, 5000.0)])
    assert out["old"]["rss"] == pytest.approx(2.0) and out["new"]["anon"] == pytest.approx(2.0)
    assert per_unit([size(10, 0.0)]) == {}


def fake_report(mode: str, rss: float, anon: float) -> dict:
    mem = {"VmRSS": rss, "VmHWM": rss * 1.5, "RssAnon": anon, "RssFile": rss - anon, "RssShmem": 0, "Pss": rss * 0.8,
           "Pss_Anon": anon, "Pss_File": rss * 0.8 - anon}
    return {"mode": mode, "memory_start": {**mem, "VmRSS": 100 * 2**20}, "memory_loaded": mem, "memory_queried": mem,
            "load_seconds": 2.0, "lookup_us": {"p50": 1.0, "p99": 3.0}, "lookup_score_ms": {"p50": 8.0, "p99": 20.0}}


def test_the_report_section_and_headline_from_summarised_rounds():
    from bench.report_api_memory import api_memory, api_memory_headline

    old = {"first": fake_report("old", 5 * 2**30, 4.9 * 2**30), "second": None, "second_skipped": "2.0 GiB available"}
    new = {"first": fake_report("new", 300 * 2**20, 50 * 2**20), "second": fake_report("new", 300 * 2**20, 50 * 2**20),
           "first_after_second": {"Pss": 150 * 2**20}}
    size = {"users": 10_000_000, "files": {"npy_bytes": 4 * 2**30, "npz_bytes": 3.5 * 2**30},
            "old": summarise([old]), "new": summarise([new])}
    r = {"dim": 97, "products": 100_000, "lookups": 10_000, "queries": 500, "repeats": 1, "k": 100, "sizes": [size],
         "bytes_per_user": {}}
    text = api_memory(r)
    assert "| 10,000,000 | old: `.npz` in the heap + dicts | 5,120 (5,120–5,120) |" in text
    assert "Second old worker not started (not enough free memory): 10,000,000 users: 2.0 GiB available." in text
    assert "| 390 (390–390) |" in text  # the two new workers' Pss: 150 + 240 MiB
    assert "\n\n\n" not in text
    assert api_memory_headline(r).startswith("- **API worker memory** (10,000,000 users x 97 dims, 100,000 products): "
                                             "old loading 5.00 GiB RSS per worker; memory-mapped 50.0 MiB private "
                                             "per worker, 300 MiB RSS after 10,000 lookups (shared page-cache pages), "
                                             "two workers 390 MiB (Pss)")

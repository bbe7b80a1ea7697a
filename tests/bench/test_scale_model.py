"""The scale model's arithmetic over benchmark results, and the SCALE.md it renders."""

from __future__ import annotations

import math

import pytest

from bench import scale_model
from bench.report_format import sig
from bench.scale_text import render


def s(x: float) -> dict:
    return {"median": x, "min": x, "max": x, "n": 1, "spread": 0.0, "runs": [x]}


def fake_results() -> dict:
    lat = {"rps": s(1000.0), "p50_ms": s(5.0), "p95_ms": s(9.0), "p99_ms": s(20.0)}
    return {
        "precompute": {"sizes": [{"products": 10_000, "dim": 65,
                                  "users_per_s": {"numpy": s(50_000.0), "score_top": s(10_000.0),
                                                  "lists": s(2_000.0)}}]},
        "ann": {"products": 10_000_000, "exact": {"exact": s(8.0), "numpy": s(20.0)},
                "ivf": {"build_seconds": 120.0, "nprobe": [
                    {"nprobe": 4, "users_per_s": s(2000.0), "recall_at_10": 0.80, "recall_top10_in_300": 0.9},
                    {"nprobe": 16, "users_per_s": s(1000.0), "recall_at_10": 0.97, "recall_top10_in_300": 0.99},
                    {"nprobe": 64, "users_per_s": s(300.0), "recall_at_10": 0.99, "recall_top10_in_300": 1.0}]}},
        "serving": {"chosen_config": {"workers": 2},
                    "side_by_side": {"hit": lat, "trivial": {**lat, "rps": s(10_000.0)},
                                     "redis_get": {**lat, "rps": s(100_000.0)}}},
        "scale_simulation": {"products": 10_000, "predicted": {"users_per_s": 1500.0, "redis_bytes_per_user": 6000},
                             "measured": {"users": 1000, "users_per_s": 1400.0, "redis_bytes_per_user": 6100.0,
                                          "write_seconds": 0.2},
                             "check": {"time_ratio_measured_to_predicted": 1.07,
                                       "memory_ratio_measured_to_predicted": 1.02}},
        "training": {"sizes": [{"interactions": 1_000_000, "threads": 2, "epoch_seconds": s(4.0)},
                               {"interactions": 1_000_000, "threads": 1, "epoch_seconds": s(7.0)}]},
    }


def test_model_multiplies_the_unit_costs_out():
    m = scale_model.model(fake_results())
    mem, pre, srv, tr = m["memory"], m["precompute"], m["serving"], m["training"]
    assert mem["redis_bytes"] == 100_000_000 * 6100.0
    assert mem["redis_shards_memory"] == math.ceil(100_000_000 * 6100.0 / (25 * 2**30))
    assert pre["ivf"]["nprobe"] == 16  # the smallest nprobe with recall@10 >= 0.95
    per_user = 1 / 1000.0 + (1 / 2000.0 - 1 / 10_000.0) + 0.2 / 1000
    assert pre["ann_hours_per_worker"] == pytest.approx(100_000_000 * per_user / 3600)
    assert pre["workers_for_window"] == math.ceil(pre["ann_hours_per_worker"] / 2.0)
    assert srv["nodes"] == math.ceil(100_000 / (1000.0 * 0.7))
    assert srv["redis_shards_throughput"] == math.ceil(900_000 / (100_000.0 * 0.7))  # 9 key operations per request
    assert tr["epoch_hours"] == pytest.approx(100_000_000 * 14 * 4.0 / 1_000_000 / 3600)
    assert tr["thread_speedup_1_to_2"] == pytest.approx(7.0 / 4.0)


def test_fused_results_shards_and_another_machine():
    results = fake_results()
    row = results["precompute"]["sizes"][0]
    row["users_per_s"]["fused_top"] = s(40_000.0)  # precompute now selects with the fused top-k
    row["numpy_gflops"] = 5.0
    results["precompute"]["machine"] = {"cpu_flags": ["avx2"], "platform": "B", "loadavg_1_5_15": [9.0, 8.0, 7.0]}
    results["ann"]["machine"] = {"cpu_flags": ["avx512f"], "platform": "A"}
    pre = scale_model.model(results)["precompute"]
    assert pre["post_seconds_per_user"] == pytest.approx(1 / 2000.0 - 1 / 40_000.0)  # lists minus fused_top
    assert pre["fused_over_old_1m"] == pytest.approx(4.0)
    sh = pre["shards"]
    assert sh["count"] >= pre["workers_for_window"] and sh["count"] & (sh["count"] - 1) == 0  # a power of two
    per_user = 1 / 1000.0 + pre["post_seconds_per_user"] + 0.2 / 1000
    assert sh["hours_per_shard"] == pytest.approx(100_000_000 / sh["count"] * per_user / 3600)
    text = render(scale_model.model(results))
    assert "hours per shard on one worker" in text and "Bench 2 ran on another machine" in text
    results["ann"]["machine"] = results["precompute"]["machine"]
    assert "another machine" not in render(scale_model.model(results))


def test_model_names_the_missing_results():
    results = fake_results()
    del results["ann"]
    with pytest.raises(SystemExit, match="ann"):
        scale_model.model(results)


def test_render_has_every_section_and_the_headline_figures():
    text = render(scale_model.model(fake_results()))
    for title in ("## 1. Memory", "## 2. Nightly precompute", "## 3. Serving", "## 4. What runs where",
                  "## 5. Check", "## 6. Training"):
        assert title in text
    assert "143 such nodes" in text  # ceil(100000 / 700)
    assert "nprobe=16" in text


def fake_api_memory() -> dict:
    def worker(rss, anon, pss):
        return {"rss": s(rss), "anon": s(anon), "pss": s(pss)}

    big = {"users": 10_000_000, "products": 100_000,
           "old": {"first": worker(5e9, 4.9e9, 4.95e9), "second": worker(5e9, 4.9e9, 4.95e9),
                   "node_pss_two_workers": s(9.9e9)},
           "new": {"first": worker(3e8, 5e7, 2e8), "second": worker(3e8, 5e7, 1.5e8),
                   "node_pss_two_workers": s(3.5e8)}}
    return {"dim": 97, "lookups": 10_000, "sizes": [big],
            "bytes_per_user": {"old": {"rss": 480.0}, "new": {"anon": 0.4}}}


def test_api_memory_extrapolates_the_measured_per_user_bytes(monkeypatch):
    # the id index's bytes per entry are measured with tracemalloc, which other threads' allocations move by a
    # few thousandths of a byte between two calls: the model is checked with one fixed measurement
    dict_bytes = scale_model.dict_bytes_per_entry()
    monkeypatch.setattr(scale_model, "dict_bytes_per_entry", lambda n=200_000: dict_bytes)
    results = {**fake_results(), "api_memory": fake_api_memory()}
    api = scale_model.model(results)["api_memory"]
    assert api["old_bytes_per_product"] == pytest.approx(97 * 4 + 96 * 4 + 8 + dict_bytes)
    assert api["old_worker_bytes"] == pytest.approx(100_000_000 * 480.0 + 10_000_000 * api["old_bytes_per_product"])
    assert api["item_side_bytes"] == 10_000_000 * (97 * 4 + 12)
    assert api["user_file_bytes"] == 100_000_000 * (97 * 4 + 8)
    assert api["node_bytes"] == api["item_side_bytes"] + 2 * (5e7 + 10_000_000 * 28)  # the serving bench's 2 workers
    text = render(scale_model.model(results))
    assert "per worker process**, which does not fit" in text and "**47.7 MiB**" in text
    assert scale_model.model(fake_results())["api_memory"] is None
    assert "BENCH_ONLY=api_memory" in render(scale_model.model(fake_results()))


def fake_shards() -> dict:
    return {"shards": 8, "sum_over_whole": 1.2,
            "balance": {"median_seconds": 10.0, "median_users_per_s": 1000.0, "max_over_mean": 1.1,
                        "users_max_over_mean": 1.02},
            "fan_out": {"fixed_seconds_per_call": 0.5, "seconds_per_user": 0.001},
            "whole": {"users": 80_000},
            "setup_seconds": {"active_users": s(0.8), "scorer_load": s(0.2)},
            "selection": {"products": 5000, "seconds_per_user": 0.0001}}


def test_measured_shards_swap_the_selection_for_the_ivf_and_keep_the_imbalance():
    results = {**fake_results(), "shards": fake_shards()}
    ms = scale_model.model(results)["precompute"]["measured_shards"]
    per_user = 0.001 - 0.0001 + 1 / 1000.0  # measured, minus its selection at 5K products, plus IVF nprobe=16
    assert ms["seconds_per_user"] == pytest.approx(per_user)
    assert ms["workers"] == math.ceil(100_000_000 * per_user * 1.1 / 3600 / 2.0)
    assert ms["count"] >= ms["workers"] and ms["count"] & (ms["count"] - 1) == 0
    assert ms["hours_per_shard"] == pytest.approx(100_000_000 / ms["count"] * per_user * 1.1 / 3600)
    assert ms["hours_per_shard_at_shop_catalogue"] == pytest.approx(100_000_000 / ms["count"] * 0.001 * 1.1 / 3600)
    assert ms["active_users_hours_at_users"] == pytest.approx(0.8 * 100_000_000 / 80_000 / 3600)
    text = render(scale_model.model(results))
    assert f"**{sig(ms['hours_per_shard'])} hours per shard on one worker** (bench 2c" in text
    assert "Per shard, measured (bench 2c" in text
    assert scale_model.model(fake_results())["precompute"]["measured_shards"] is None
    assert "bench 2c" not in render(scale_model.model(fake_results()))

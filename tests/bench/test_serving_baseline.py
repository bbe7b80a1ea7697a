"""The serving benchmark's baseline in bench/README.md: each figure beside the baseline's, the finding."""

from __future__ import annotations

from bench.common import summary
from bench.serving_baseline import before_after, change_finding


def _target(rps: float, p50: float) -> dict:
    return {"rps": summary([rps]), "p50_ms": summary([p50]), "p95_ms": summary([2 * p50]), "p99_ms": summary([4 * p50])}


def serving_result(*, with_baseline: bool) -> dict:
    sbs = {"hit": _target(1000, 20), "trivial": _target(5000, 5), "ratio_hit_to_trivial": 0.2}
    r = {"connections": 32, "side_by_side": sbs, "sequential": {"hit_sequential": {"p50_ms": 1.5}},
         "profile_hit": {"mean_ms_per_call_unprofiled": 0.6}, "baseline": None}
    if with_baseline:
        sbs.update(hit_baseline=_target(500, 40), ratio_baseline_to_trivial=0.1)
        r["sequential"]["hit_sequential_baseline"] = {"p50_ms": 3.0}
        r["baseline"] = {"source": "/tmp/before", "git_commit": "abc1234", "api_source": {"sha256_16": "f00"},
                         "profile_hit": {"mean_ms_per_call_unprofiled": 1.5}}
    return r


def _rows(text: str) -> dict[str, list[str]]:
    return {cells[0]: cells[1:] for line in text.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}


def test_the_table_sets_each_figure_beside_the_baseline():
    rows = _rows(before_after(serving_result(with_baseline=True)))
    assert rows["cache-hit req/s at 32 connections"][2] == "2.00"
    assert rows["cache-hit p99 ms at 32 connections"][:2] == ["160 (160–160)", "80.0 (80.0–80.0)"]
    assert rows["cache hit / trivial endpoint (same run)"] == ["0.100", "0.200", "2.00"]
    assert rows["one request alone, p50 ms"][2] == "0.500"
    assert rows["route call in process, µs (`respond`; before: `recommend`)"] == ["1,500", "600", "0.400"]


def test_the_finding_names_the_baseline_and_the_changes():
    line = change_finding(serving_result(with_baseline=True))
    assert "commit abc1234" in line and "500 -> 1,000 req/s" in line and "0.100 -> 0.200" in line
    assert "40.0 -> 20.0 / 80.0 -> 40.0 / 160 -> 80.0 ms" in line and "1,500 -> 600 µs" in line


def test_without_a_baseline_there_is_nothing_to_compare():
    r = serving_result(with_baseline=False)
    assert before_after(r) == "" and change_finding(r) == ""

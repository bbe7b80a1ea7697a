"""The README generator's computed sentences and formatting."""

from __future__ import annotations

from bench.report_format import med, short_function, sig, table
from bench.report_sections import _plateau


def _cfg(workers: int, rps: float, spread: float) -> dict:
    return {"workers": workers, "hit": {"rps": {"median": rps, "spread": spread}}}


def test_plateau_says_tuning_stops_paying_only_within_the_spread():
    assert "stops paying" in _plateau([_cfg(1, 500, 0.1), _cfg(2, 860, 0.1), _cfg(3, 865, 0.1)])
    assert "the best is kept" in _plateau([_cfg(1, 500, 0.05), _cfg(2, 1000, 0.05)])
    assert _plateau([_cfg(1, 500, 0.1)]) == ""


def test_formatting():
    assert sig(1234.5) == "1,234" and sig(0.012345) == "0.0123" and sig(None) == "–"
    assert med({"median": 2.0, "min": 1.0, "max": 3.0}) == "2.00 (1.00–3.00)"
    assert table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert short_function("/root/.pyenv/versions/3.11.7/lib/python3.11/dataclasses.py:1453(replace)") == \
        "dataclasses.py:1453(replace)"


def test_ingest_before_after_compares_the_same_run_modes_of_both_apis():
    from bench.report_sections import ingest_before_after

    def mode(rate, errors):
        return {"events_per_s": {"median": rate}, "errors": errors}

    level = {"api": mode(900.0, [{}, {}]), "api_base": mode(300.0, [{"http 503": 2}, {}]),
             "batch": mode(10_000.0, [{}]), "batch_base": mode(4_000.0, [{"http 503": 70}, {"http 503": 30}]),
             "nothing_lost": True, "baseline_nothing_lost": True}
    run = {"levels": {"64": level, "8": {"api": mode(1.0, [])}}, "baseline": {"git_commit": "abc1234"}}
    text, rows = ingest_before_after(run)
    assert "abc1234" in text and "before none, after none" in text
    assert rows.splitlines()[2] == "| 64 | 300 | 900 | 3.00 | 2 / 0 | 4,000 | 10,000 | 2.50 | 100 / 0 |"
    assert len(rows.splitlines()) == 3  # concurrency 8 has no baseline runs: no row
    assert ingest_before_after({**run, "baseline": None}) == []


def test_ingest_batches_table_per_level_and_none_for_results_without_batch_runs():
    from bench.report_sections import ingest_batches

    def stat(x: float) -> dict:
        return {"median": x, "min": x, "max": x}

    check = {"acked": 100, "rows": 100, "missing": 0, "ok": True}
    level = {"pg": {"events_per_s": stat(2000.0)}, "ratio_batch_to_pg": 2.5, "batch_count_checks": [check, check],
             "batch": {"events_per_s": stat(5000.0), "p50_ms": stat(10.0), "p99_ms": stat(20.0), "sent": 200,
                       "events_per_request": 100, "events_per_run": 100}}
    text, rows = ingest_batches({"levels": {"64": level, "8": {"pg": {}}}})
    assert "`POST /events/batch`" in text
    assert rows.splitlines()[2] == ("| 64 | 100 | 5,000 (5,000–5,000) | 2,000 (2,000–2,000) | 2.50 | 10.0 (10.0–10.0) "
                                    "| 20.0 (20.0–20.0) | 200 | 200 | 200 | 0 | yes |")
    assert len(rows.splitlines()) == 3  # concurrency 8 ran no batches
    assert ingest_batches({"levels": {"8": {"pg": {}}}}) == []


def test_shards_section_has_a_row_per_shard_and_the_balance():
    from bench.report_shards import shards, shards_headline

    def summ(x):
        return {"median": x, "min": x, "max": x}

    per_shard = [{"shard": k, "users": 100 + k, "seconds": summ(1.0 + k), "users_per_s": (100 + k) / (1.0 + k)}
                 for k in range(4)]
    run = {"shards": 4, "repeats": 2, "per_shard": per_shard, "sum_over_whole": 1.25,
           "balance": {"median_seconds": 2.5, "median_users_per_s": 41.0, "max_over_min": 4.0, "max_over_mean": 1.6,
                       "users_max_over_mean": 1.01, "sum_seconds": 10.0, "seconds_per_user": 0.0247},
           "fan_out": {"fixed_seconds_per_call": 0.67, "seconds_per_user": 0.018},
           "whole": {"users": 406, "seconds": summ(8.0)},
           "setup_seconds": {"scorer_load": summ(0.3), "active_users": summ(0.2)},
           "selection": {"products": 5000, "seconds_per_user": 0.0001},
           "shop": {"users": 500, "products": 5000, "events": 14000}, "settings": {"block": 2048, "threads": 2}}
    text = shards(run)
    assert "| 3 | 103 | 4.00 (4.00–4.00) | 25.8 |" in text
    assert "| slowest / mean shard (time) | 1.60 |" in text and "| sum / one call | 1.25 |" in text
    assert "slowest / mean 1.60" in shards_headline(run)

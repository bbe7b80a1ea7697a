"""Model selection on the synthetic shop: the auto row, no look at the test, the time box, the choice."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys.constants import COL_ITEM, COL_TIMESTAMP, DEFAULT_K, IMPRESSION
from recsys.evaluation import selection as S
from recsys.evaluation.logs import EventLogs
from recsys.evaluation.models import BaselineConfig, HybridConfig
from recsys.evaluation.protocol import Cutoff, Protocol, build_eval_split, choose_cutoff
from recsys.evaluation.validation import evaluate_validation
from recsys.evaluation.runner import RunOptions, run_selection
from recsys.families.hybrid.fit import TrainParams
from tests.evaluation.eval_helpers import synthetic_logs

# small and single-threaded: seeded training is bit-identical
HYBRID = HybridConfig(params=TrainParams(epochs=5, no_components=16, threads=1, seed=7))


@pytest.fixture(scope="module")
def logs() -> EventLogs:
    return synthetic_logs()


@pytest.fixture(scope="module")
def split(logs):
    return build_eval_split(logs, choose_cutoff(logs.events, test_days=10), Protocol(k=DEFAULT_K, seed=7))


def test_candidates_cover_every_family_with_the_production_default_first():
    specs = S.candidate_specs(HYBRID)
    assert specs[0].name == S.DEFAULT_CANDIDATE and specs[0].hybrid == HYBRID
    assert {s.family for s in specs} == set(S.FAMILIES)
    assert ["hybrid-default", "item-knn", "als", "lightfm-cf", "hybrid-warp", "hybrid-nofeatures", "ease", "sequential"] \
        == [s.name for s in specs]  # sequential last: the time box skips the slowest first
    ids_only = dataclasses.replace(HYBRID, params=dataclasses.replace(HYBRID.params, user_features=(),
                                                                      item_features=()))
    assert "hybrid-nofeatures" not in {s.name for s in S.candidate_specs(ids_only)}  # same as the default


@pytest.mark.slow  # tens of seconds: not in make test-fast
def test_auto_row_is_the_chosen_candidates_row(split):
    # the sequential candidate small and stopped by epochs, not by its wall-clock budget: retrained identically
    small = BaselineConfig(sequential={"dim": 16, "heads": 1, "layers": 1, "max_epochs": 2, "time_budget_s": 300})
    out = run_selection(split, RunOptions(selection=True, progress=False, selection_budget_seconds=900,
                                          baselines=small), HYBRID)
    chosen = [row for row in out["candidates"] if row["chosen"]]
    assert len(chosen) == 1 and out["chosen"] == chosen[0]["name"] == out["auto"]["chosen"]
    ran = [row for row in out["candidates"] if row["validation"] is not None]
    assert len(ran) == len(out["candidates"])  # the budget was ample
    best = max(row["validation"]["ndcg@10"] for row in ran)
    assert chosen[0]["validation"]["ndcg@10"] == best
    row, auto = out["test"][out["chosen"]], out["auto"]
    assert auto["family"] == chosen[0]["family"]
    for metric in ("precision@10", "recall@10", "ndcg@10", "map@10"):
        assert auto[metric] == pytest.approx(row[metric], rel=1e-6)  # retrained: identical when seeded
    assert all(out["test"][r["name"]]["users"] == len(split.main.users) for r in ran)


def _with_sentinels(logs: EventLogs, cut: int) -> EventLogs:
    """The same training events; the test replaced by purchases of products never seen before the cut-off."""
    train = logs.events[logs.events[COL_TIMESTAMP] < cut]
    test = logs.events[logs.events[COL_TIMESTAMP] >= cut].copy()
    test[COL_ITEM] = 900_000 + test[COL_ITEM]  # sentinel products
    sentinels = logs.products.assign(**{COL_ITEM: 900_000 + logs.products[COL_ITEM]})
    known = test.iloc[:50].assign(**{COL_ITEM: logs.events[COL_ITEM].iloc[:50].to_numpy()})  # a few known ones
    return EventLogs(pd.concat([train, test, known]), None, logs.users, pd.concat([logs.products, sentinels]), {})


def test_selection_never_reads_the_test_period(logs, split):
    cut = split.cutoff_ms
    other = build_eval_split(_with_sentinels(logs, cut), Cutoff("split-date", "same", cut), split.protocol)
    assert other.info["positive_pairs"] != split.info["positive_pairs"]  # another test set
    for min_users, protocol in ((1, "time"), (2000, "per-user")):  # the time split, and the switch to per user
        val, how = evaluate_validation(split, min_users)
        val_other, _ = evaluate_validation(other, min_users)
        assert how["protocol"] == protocol and val.train_events[COL_TIMESTAMP].max() < cut
        assert val_other.info == val.info  # the same validation split: nothing of the test period in it
        assert val_other.main.products[COL_ITEM].tolist() == val.main.products[COL_ITEM].tolist()
        assert not val_other.main.products[COL_ITEM].ge(900_000).any()  # no sentinel among the candidates
        assert [t.tolist() for t in val_other.main.truth] == [t.tolist() for t in val.main.truth]
    assert val.info["split"]["test_period"][1] < split.info["split"]["cutoff"]
    specs = S.candidate_specs(HYBRID)[:4]
    first = S.select_model(val, specs, budget_seconds=600)
    second = S.select_model(val_other, specs, budget_seconds=600)
    assert [r["validation"] for r in first.rows] == [r["validation"] for r in second.rows]
    assert first.chosen["name"] == second.chosen["name"]


def test_the_time_box_skips_candidates_and_says_so(split, monkeypatch):
    val, _ = evaluate_validation(split)
    specs = S.candidate_specs(HYBRID)
    clock = iter(np.arange(0.0, 1000.0, 10.0))  # every perf_counter call: 10 s later
    monkeypatch.setattr(S.time, "perf_counter", lambda: float(next(clock)))
    out = S.select_model(val, specs, budget_seconds=45)
    ran = [r["name"] for r in out.rows if r["validation"] is not None]
    skipped = [r for r in out.rows if r["skipped"]]
    assert ran[0] == S.DEFAULT_CANDIDATE and 1 <= len(ran) < len(specs)
    assert skipped and all("time box" in r["skipped"] and "45 s budget" in r["skipped"] for r in skipped)
    assert out.chosen["name"] in ran
    assert [r["name"] for r in out.rows] == [s.name for s in specs]  # every candidate is reported


def test_the_time_box_expects_the_sequential_model_to_use_its_training_budget(split):
    """Its first fit has no measured cost of its family: the box counts its own time budget, not the hybrid's cost."""
    val, _ = evaluate_validation(split)
    long = BaselineConfig(sequential={"time_budget_s": 100})
    default, sequential = S.candidate_specs(HYBRID, long)[0], S.candidate_specs(HYBRID, long)[-1]
    assert sequential.family == "sequential"
    assert sequential.time_budget_seconds == 100 == sequential.config()["time_budget_s"]
    out = S.select_model(val, [default, sequential], budget_seconds=60)
    assert out.rows[0]["validation"] is not None and out.rows[1]["validation"] is None
    assert out.rows[1]["skipped"].startswith("cut by the time box:") and "+ 100.0 s expected > 60 s budget" in out.rows[1]["skipped"]


def test_the_default_runs_even_when_the_budget_is_spent(split):
    val, _ = evaluate_validation(split)
    out = S.select_model(val, S.candidate_specs(HYBRID), budget_seconds=1e-6)
    assert [r["name"] for r in out.rows if r["validation"]] == [S.DEFAULT_CANDIDATE]
    assert out.chosen["name"] == S.DEFAULT_CANDIDATE and out.as_dict()["chosen"] == S.DEFAULT_CANDIDATE


def test_choice_breaks_exact_ties_by_the_secondary_metric_then_order():
    spec = S.candidate_specs(HYBRID)[0]
    rows = [S._row(spec, name=n, validation={"ndcg@10": v, "precision@10": p})
            for n, v, p in (("a", 0.2, 0.1), ("b", 0.3, 0.1), ("c", 0.3, 0.2), ("d", 0.3, 0.2))]
    S._choose(rows, "ndcg@10")
    assert [r["name"] for r in rows if r["chosen"]] == ["c"]
    with pytest.raises(ValueError, match="ranking metric"):
        S.select_model(None, [spec], metric="auc")
    with pytest.raises(ValueError, match="budget"):
        S.select_model(None, [spec], budget_seconds=0)


def test_exclude_seen_interacted_removes_every_touched_product_from_candidates_and_truth(logs, split):
    interacted = build_eval_split(logs, Cutoff("split-date", "same", split.cutoff_ms),
                                  dataclasses.replace(split.protocol, exclude_seen="interacted"))
    before = logs.events[(logs.events[COL_TIMESTAMP] < split.cutoff_ms) & (logs.events["event_type"] != IMPRESSION)]
    touched = before.groupby("user_id")[COL_ITEM].agg(set)
    ids = interacted.main.products[COL_ITEM].to_numpy()
    users = interacted.main.users["user_id"].to_numpy()
    for user, truth, excluded in zip(users, interacted.main.truth, interacted.main.excluded):
        mine = touched.get(user, set()) & set(ids.tolist())
        assert set(ids[excluded].tolist()) == mine  # every touched product is excluded...
        assert not set(ids[truth].tolist()) & mine  # ...and none is a hit
    assert interacted.info["exclude_seen"] == "interacted" and split.info["exclude_seen"] == "purchased"
    assert sum(map(len, interacted.main.excluded)) > sum(map(len, split.main.excluded))
    model = S.candidate_specs(HYBRID)[1].fit(interacted)  # item-knn: the lists as served never show them
    from recsys.evaluation.measure import rank

    top, _ = rank(model, interacted.main, 10, seed=1, with_auc=False)
    assert not any(set(row.tolist()) & set(x.tolist()) for row, x in zip(top, interacted.main.excluded))


def _ranked(name: str, family: str, value: float, interval: tuple[float, float]) -> dict:
    spec = S.candidate_specs(HYBRID)[0]
    return S._row(spec, name=name, family=family, validation={"ndcg@10": value, "precision@10": 0.1},
                  interval=list(interval))


def test_the_tie_rule_keeps_the_live_family_only_within_the_leaders_interval():
    rows = [_ranked("hybrid-default", "hybrid", 0.100, (0.090, 0.110)), _ranked("als", "als", 0.105, (0.095, 0.115))]
    decision = S._choose(rows, "ndcg@10", live_family="hybrid")
    assert [r["name"] for r in rows if r["chosen"]] == ["hybrid-default"] and "kept the LIVE family hybrid" in decision
    rows = [_ranked("hybrid-default", "hybrid", 0.100, (0.090, 0.110)), _ranked("als", "als", 0.130, (0.115, 0.145))]
    decision = S._choose(rows, "ndcg@10", live_family="hybrid")
    assert [r["name"] for r in rows if r["chosen"]] == ["als"] and "outside its 95% interval" in decision
    rows = [_ranked("hybrid-default", "hybrid", 0.100, (0.090, 0.110)), _ranked("als", "als", 0.105, (0.095, 0.115))]
    S._choose(rows, "ndcg@10", live_family=None)  # no LIVE model: the leader
    assert [r["name"] for r in rows if r["chosen"]] == ["als"]
    rows = [_ranked("hybrid-default", "hybrid", 0.100, (0.09, 0.11)), _ranked("als", "als", 0.105, (0.095, 0.115)),
            _ranked("item-knn", "item-knn", 0.2, (0.0, 0.3))]
    rows[2]["skipped"] = "cut by its training time budget after 1 epoch(s), still improving: a partial fit, not ranked"
    S._choose(rows, "ndcg@10", live_family="als")  # a partial fit is never the leader
    assert [r["name"] for r in rows if r["chosen"]] == ["als"]


def test_bootstrap_intervals_are_paired_seeded_and_cover_the_mean():
    rng = np.random.default_rng(0)
    a = rng.random(500)
    values = {"a": a, "b": a + 0.01}
    first = S.bootstrap_intervals(values, seed=3)
    assert first == S.bootstrap_intervals(values, seed=3)  # same seed, same intervals
    assert first != S.bootstrap_intervals(values, seed=4)
    lo, hi = first["a"]
    assert lo < a.mean() < hi and hi - lo < 0.1
    # paired: the same resampled users for every candidate, so a constant shift shifts the interval exactly
    assert first["b"] == pytest.approx((lo + 0.01, hi + 0.01))
    with pytest.raises(ValueError, match="same non-empty users"):
        S.bootstrap_intervals({"a": a, "b": a[:10]}, seed=3)


def test_every_ranked_candidate_has_an_interval_on_the_same_users(split):
    val, _ = evaluate_validation(split)
    out = S.select_model(val, S.candidate_specs(HYBRID)[1:3], budget_seconds=600)
    for row in out.rows:
        lo, hi = row["interval"]
        assert lo <= row["validation"]["ndcg@10"] <= hi and row["validation"]["users"] == len(val.main.users)
    again = S.select_model(val, S.candidate_specs(HYBRID)[1:3], budget_seconds=600)
    assert [r["interval"] for r in again.rows] == [r["interval"] for r in out.rows]
    assert out.as_dict()["decision"] == out.decision and out.chosen["name"] in out.decision


def test_a_candidate_cut_by_its_training_budget_while_improving_is_reported_not_ranked(split):
    val, _ = evaluate_validation(split)
    cut = BaselineConfig(sequential={"dim": 16, "heads": 1, "layers": 1, "max_epochs": 50, "time_budget_s": 0.01})
    sequential = S.candidate_specs(HYBRID, cut)[-1]
    out = S.select_model(val, [S.candidate_specs(HYBRID)[1], sequential], budget_seconds=600)
    row = out.rows[1]
    assert row["family"] == "sequential" and row["validation"] is not None and not row["chosen"]
    assert row["skipped"].startswith("cut by its training time budget after 1 epoch(s), still improving")
    assert row["interval"] is None and out.chosen["name"] == "item-knn"

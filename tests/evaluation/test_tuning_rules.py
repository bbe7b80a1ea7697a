"""Pure rules of the weekly tuning and the selection table (no database)."""

from __future__ import annotations

import datetime as dt

from recsys.evaluation.models import BaselineConfig, HybridConfig
from recsys.evaluation.selection import candidate_specs
from recsys.pipeline.model_choice import selection_table
from recsys.evaluation.tuning import apply_tuned, leading
from recsys.pipeline.model_choice import is_due

DAY = dt.date(2026, 11, 20)


def test_a_search_is_due_when_missing_or_as_old_as_the_interval_and_never_when_off():
    assert is_due(None, DAY, 7)
    assert not is_due({"searched_on": "2026-11-14"}, DAY, 7)  # 6 days old
    assert is_due({"searched_on": "2026-11-13"}, DAY, 7)  # 7 days old
    assert not is_due(None, DAY, 0) and not is_due({"searched_on": "2026-01-01"}, DAY, 0)


def test_the_leading_families_come_from_the_last_selection_one_candidate_each():
    specs = candidate_specs(HybridConfig(), BaselineConfig())
    last = {"metric": "ndcg@10", "candidates": [
        {"name": "hybrid-default", "validation": {"ndcg@10": 0.10}},
        {"name": "item-knn", "validation": {"ndcg@10": 0.12}},
        {"name": "hybrid-warp", "validation": {"ndcg@10": 0.11}},
        {"name": "als", "validation": None}]}
    assert [s.name for s in leading(specs, last, 2)] == ["item-knn", "hybrid-warp"]
    assert [s.name for s in leading(specs, None, 2)] == ["hybrid-default", "item-knn"]
    best_sequential = {**last, "candidates": [{"name": "sequential", "validation": {"ndcg@10": 0.2}}, *last["candidates"]]}
    assert [s.name for s in leading(specs, best_sequential, 2)] == ["item-knn", "hybrid-warp"]  # no search space


def test_a_tuned_configuration_changes_only_its_family_parameters():
    specs = {s.name: s for s in candidate_specs(HybridConfig(), BaselineConfig())}
    knn = apply_tuned(specs["item-knn"], {"config": {"neighbours": 7}})
    assert knn.config() == {"neighbours": 7}
    hybrid = apply_tuned(specs["hybrid-default"], {"config": {"params": {"no_components": 12, "seed": 99}}})
    assert hybrid.hybrid.params.no_components == 12 and hybrid.hybrid.params.seed == specs["hybrid-default"].hybrid.params.seed
    cf = apply_tuned(specs["lightfm-cf"], {"config": {"params": {"epochs": 4}}})
    assert cf.config()["params"]["epochs"] == 4 and cf.config()["features"] == "ids only"
    assert apply_tuned(specs["als"], None) is specs["als"]


def test_the_selection_table_names_every_candidate_and_the_chosen_one():
    text = selection_table({"metric": "ndcg@10", "secondary_metric": "precision@10", "seconds": 3.0,
                            "budget_seconds": 900.0, "candidates": [
                                {"name": "hybrid-default", "family": "hybrid", "validation": {"ndcg@10": 0.1},
                                 "interval": [0.09, 0.11],
                                 "fit_seconds": 1.0, "chosen": True, "skipped": None},
                                {"name": "als", "family": "als", "validation": None, "fit_seconds": None,
                                 "chosen": False, "skipped": "cut by the time box: 899.0 s used"}],
                            "decision": "hybrid-default leads by ndcg@10 0.1000",
                            "validation": {"protocol": "time", "description": "last 4 day(s) of the training window",
                                           "users": 2300, "min_users": 2000, "eligible_users": 4900,
                                           "tried": [{"days": 1, "users": 700}, {"days": 2, "users": 1300},
                                                     {"days": 4, "users": 2300}], "reason": "2300 users >= 2000"}})
    lines = text.splitlines()
    assert "protocol time" in lines[1] and "2300 users" in lines[1] and "1 d: 700, 2 d: 1300, 4 d: 2300" in lines[1]
    assert "hybrid-default" in lines[3] and "0.1000" in lines[3] and lines[3].endswith("CHOSEN")
    assert "[0.0900, 0.1100]" in lines[3]
    assert "als" in lines[4] and lines[4].endswith("time box: 899.0 s used")
    assert lines[-1] == "choice: hybrid-default leads by ndcg@10 0.1000"

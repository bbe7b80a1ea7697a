"""The nightly DAG's sequential branch without Airflow: train (time-boxed), register, evaluate, decide; the
setting that turns it off; a re-run reusing its model; and a sequential model promoted, rolled back and
A/B tested through the registry like any other."""

from __future__ import annotations

import pytest

from shop_dates import LAST_EVENT_DAY
from recsys import registry
from recsys.evaluation.gate import judge
from recsys.families.sequential import MODEL_TYPE_SEQUENTIAL
from recsys.constants import STATUS_ARCHIVED, STATUS_CANDIDATE, STATUS_LIVE
from recsys.flows import nightly
from recsys.pipeline.runs import get_steps
from recsys.settings import get_settings

pytestmark = pytest.mark.slow  # the sequential branch trains models, up to a minute each: not in make test-fast

DAY = LAST_EVENT_DAY
FAST = {"epochs": 3, "window_days": 14}


@pytest.fixture
def quick(monkeypatch):
    """Sequential training boxed to 2 s (one or two epochs of the default model on the small shop)."""
    monkeypatch.setenv("RECSYS_SEQUENTIAL_TIME_BUDGET_SECONDS", "2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_branch_trains_registers_evaluates_and_never_takes_the_live_slot(shop_engine, local_store, quick):
    hybrid = nightly.train(shop_engine, local_store, DAY, FAST)
    registry.promote(shop_engine, hybrid["model_id"], reason="test")

    trained = nightly.train_sequential(shop_engine, local_store, DAY, FAST)
    row = registry.get_model(shop_engine, trained["model_id"])
    assert row.model_type == MODEL_TYPE_SEQUENTIAL and row.params["window_days"] == 14
    assert row.params["time_budget_s"] == 2 and trained["stopped"] in ("time_budget", "patience", "max_epochs")
    assert trained["day"] == DAY.isoformat()
    for name, digest in row.artifacts.items():
        assert local_store.sha256(f"models/{row.model_id}/{name}") == digest

    evaluated = nightly.evaluate_sequential(shop_engine, local_store, DAY, trained["model_id"], FAST)
    metrics = registry.get_model(shop_engine, trained["model_id"]).metrics
    assert metrics["live"] is not None and metrics["protocol"]["live_model_id"] == hybrid["model_id"]
    wins, _ = judge(metrics, get_settings().promotion_margin)
    expected = STATUS_CANDIDATE if wins else STATUS_ARCHIVED
    assert registry.get_model(shop_engine, trained["model_id"]).status == expected
    assert evaluated["decision"] == ("candidate" if wins else "archived")
    assert registry.get_live(shop_engine).model_id == hybrid["model_id"]  # the hybrid branch owns the LIVE slot
    steps = {s["step"]: s["status"] for s in get_steps(shop_engine, DAY)}
    assert steps["train_sequential"] == steps["evaluate_sequential"] == "SUCCESS"

    again = nightly.train_sequential(shop_engine, local_store, DAY, FAST)
    assert again["reused"] and again["model_id"] == trained["model_id"]
    rerun = nightly.evaluate_sequential(shop_engine, local_store, DAY, trained["model_id"], FAST)
    assert rerun["decision"] == "kept" and rerun["status"] == expected


def test_promote_and_roll_back_a_sequential_model(shop_engine, local_store, quick):
    hybrid = nightly.train(shop_engine, local_store, DAY, FAST)
    registry.promote(shop_engine, hybrid["model_id"], reason="test")
    sequential = nightly.train_sequential(shop_engine, local_store, DAY, FAST)["model_id"]
    registry.promote(shop_engine, sequential, reason="operator")
    assert registry.get_live(shop_engine).model_id == sequential
    registry.rollback(shop_engine)
    assert registry.get_live(shop_engine).model_id == hybrid["model_id"]
    assert registry.get_model(shop_engine, sequential).status != STATUS_LIVE


def test_the_setting_turns_the_branch_off(shop_engine, local_store, monkeypatch):
    monkeypatch.setenv("RECSYS_SEQUENTIAL_NIGHTLY", "false")
    get_settings.cache_clear()
    try:
        with pytest.raises(nightly.Skip, match="RECSYS_SEQUENTIAL_NIGHTLY"):
            nightly.train_sequential(shop_engine, local_store, DAY, FAST)
    finally:
        get_settings.cache_clear()
    assert {s["step"]: s["status"] for s in get_steps(shop_engine, DAY)}["train_sequential"] == "SKIPPED"
    assert registry.list_models(shop_engine) == []


def test_a_window_without_sequences_is_skipped(engine, local_store, quick):
    with pytest.raises(nightly.Skip, match="nothing to train the sequential model on"):
        nightly.train_sequential(engine, local_store, DAY, FAST)


def test_a_rerun_after_retention_deleted_the_files_trains_again(shop_engine, local_store, quick):
    """The operator suite's Celery dry run of yesterday found the earlier run's sequential model
    archived and its folder deleted by retention: the re-run reused the row, and evaluate_sequential
    failed loading files that were gone. A model whose files are gone is not reused."""
    first = nightly.train_sequential(shop_engine, local_store, DAY, FAST)["model_id"]
    nightly.evaluate_sequential(shop_engine, local_store, DAY, first, FAST)
    assert local_store.delete_prefix(f"models/{first}/") > 0  # what publish's retention does to an old folder

    again = nightly.train_sequential(shop_engine, local_store, DAY, {**FAST, "dry_run": True})
    assert not again.get("reused") and again["model_id"] != first
    evaluated = nightly.evaluate_sequential(shop_engine, local_store, DAY, again["model_id"], {**FAST, "dry_run": True})
    assert evaluated["decision"] == "archived"  # a dry run never makes a candidate
    assert registry.get_model(shop_engine, again["model_id"]).metrics["new"] is not None


def test_without_the_training_modules_the_branch_is_skipped(shop_engine, local_store, monkeypatch):
    """make run installs requirements.txt only: the branch failed with ModuleNotFoundError: torch, and the DAG
    test waited for its retries. Now it is skipped, saying what to install."""
    import sys

    monkeypatch.setitem(sys.modules, "recsys.families.sequential.train", None)  # as if torch were not installed
    with pytest.raises(nightly.Skip, match="needs torch.*requirements-train.txt"):
        nightly.train_sequential(shop_engine, local_store, DAY, FAST)
    assert {s["step"]: s["status"] for s in get_steps(shop_engine, DAY)}["train_sequential"] == "SKIPPED"
    assert registry.list_models(shop_engine) == []


def test_the_challenger_candidate_param_keeps_the_model_for_an_ab_test_whatever_the_gate(shop_engine, local_store, quick):
    hybrid = nightly.train(shop_engine, local_store, DAY, FAST)
    registry.promote(shop_engine, hybrid["model_id"], reason="test")
    trained = nightly.train_sequential(shop_engine, local_store, DAY, FAST)
    params = {**FAST, "challenger_candidate": True}
    evaluated = nightly.evaluate_sequential(shop_engine, local_store, DAY, trained["model_id"], params)
    row = registry.get_model(shop_engine, trained["model_id"])
    assert evaluated["decision"] == "candidate" and row.status == STATUS_CANDIDATE
    wins, why = judge(row.metrics, get_settings().promotion_margin)
    assert why in row.decision  # the gate's verdict stays on the row
    assert ("challenger_candidate" in row.decision) == (not wins)
    assert registry.get_live(shop_engine).model_id == hybrid["model_id"]

    dry = nightly.train_sequential(shop_engine, local_store, DAY, {**FAST, "window_days": 13})
    nightly.evaluate_sequential(shop_engine, local_store, DAY, dry["model_id"], {**params, "window_days": 13,
                                                                               "dry_run": True})
    assert registry.get_model(shop_engine, dry["model_id"]).status == STATUS_ARCHIVED  # a dry run keeps nothing

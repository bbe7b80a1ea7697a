"""The nightly task functions without Airflow: params, step records, dry run, re-run reuse."""

from __future__ import annotations

import datetime as dt

import pytest

from shop_dates import LAST_EVENT_DAY
from recsys.flows import nightly
from recsys.pipeline.runs import get_steps
from recsys.settings import Settings

DAY = LAST_EVENT_DAY
FAST = {"epochs": 3, "window_days": 14}


def test_run_params_default_to_settings_and_take_overrides():
    settings = Settings(training_window_days=60, epochs=7, loss="bpr")
    run = nightly.RunParams.from_params(None, settings)
    assert (run.window_days, run.epochs, run.loss, run.dry_run, run.force_promotion) == (60, 7, "bpr", False, False)
    run = nightly.RunParams.from_params({"epochs": 3, "dry_run": True, "loss": None}, settings)
    assert (run.epochs, run.dry_run, run.loss) == (3, True, "bpr")


def _steps(engine, day=DAY) -> dict:
    return {s["step"]: s for s in get_steps(engine, day)}


def test_each_step_leaves_a_record_and_a_failure_is_recorded(shop_engine, local_store):
    nightly.extract(shop_engine, local_store, DAY)
    nightly.validate(shop_engine, local_store, DAY)
    trained = nightly.train(shop_engine, local_store, DAY, FAST)
    steps = _steps(shop_engine)
    assert steps["train"]["status"] == "SUCCESS"
    assert steps["train"]["details"]["model_id"] == trained["model_id"]
    assert steps["train"]["details"]["duration_seconds"] >= 0

    with pytest.raises(Exception):
        nightly.evaluate(shop_engine, local_store, DAY, "01NOSUCHMODEL0000000000000")
    assert _steps(shop_engine)["evaluate"]["status"] == "FAILED"


def test_dry_run_archives_and_skips_publishing(shop_engine, local_store):
    from recsys import registry

    nightly.extract(shop_engine, local_store, DAY)
    trained = nightly.train(shop_engine, local_store, DAY, FAST)
    nightly.evaluate(shop_engine, local_store, DAY, trained["model_id"])
    decision = nightly.promote_or_archive(shop_engine, DAY, trained["model_id"], {"dry_run": True})
    assert decision["dry_run"] and decision["decision"] == "archived"
    assert registry.get_live(shop_engine) is None
    with pytest.raises(nightly.Skip):
        nightly.publish(shop_engine, local_store, DAY, decision)
    assert _steps(shop_engine)["publish"]["status"] == "SKIPPED"
    with pytest.raises(nightly.Skip):
        nightly.shards(shop_engine, DAY, decision)


def test_rerun_of_a_day_reuses_its_model_and_new_params_train_anew(shop_engine, local_store):
    first = nightly.train(shop_engine, local_store, DAY, FAST)
    again = nightly.train(shop_engine, local_store, DAY, FAST)
    assert again["model_id"] == first["model_id"] and again["reused"]
    other = nightly.train(shop_engine, local_store, DAY, {**FAST, "epochs": 4})
    assert other["model_id"] != first["model_id"]
    next_day = nightly.train(shop_engine, local_store, DAY - dt.timedelta(days=1), FAST)
    assert next_day["model_id"] not in (first["model_id"], other["model_id"])


def test_dry_run_of_the_live_models_day_leaves_the_live_model_alone(shop_engine, local_store):
    """A dry run re-uses the model of the same day and params; when that model is LIVE it stays LIVE
    (it used to fail: the registry refuses to archive the LIVE model)."""
    from recsys import registry

    nightly.extract(shop_engine, local_store, DAY)
    trained = nightly.train(shop_engine, local_store, DAY, FAST)
    nightly.evaluate(shop_engine, local_store, DAY, trained["model_id"])
    forced = nightly.promote_or_archive(shop_engine, DAY, trained["model_id"], {**FAST, "force_promotion": True})
    nightly.switch(shop_engine, DAY, forced)  # the release's switch (after the lists, which this test leaves out)
    assert registry.get_live(shop_engine).model_id == trained["model_id"]

    again = nightly.train(shop_engine, local_store, DAY, {**FAST, "dry_run": True})
    assert again["reused"] and again["model_id"] == trained["model_id"]
    decision = nightly.promote_or_archive(shop_engine, DAY, again["model_id"], {**FAST, "dry_run": True})
    assert decision["decision"] == "kept" and decision["dry_run"]
    assert registry.get_live(shop_engine).model_id == trained["model_id"]
    with pytest.raises(nightly.Skip):
        nightly.publish(shop_engine, local_store, DAY, decision)

"""The nightly DAG's challenger branch: a parallel path after validate, beside the main line's train.

``train_sequential`` trains the challenger family (``RECSYS_CHALLENGER_FAMILY``, by default the sequential
session model; the task ids keep their first names) on the same window as the main line (the run's
``window_days``), in the family's default configuration with the settings' options (a training time
budget: ``RECSYS_SEQUENTIAL_TIME_BUDGET_SECONDS``, 600 s of 2 cores by default, well inside the 4 h
``RECSYS_DAG_DEADLINE_HOURS``), and registers it. ``evaluate_sequential`` scores it on the hold-out day
with the gate's protocol (``recsys.evaluation.gate.evaluate_candidate``: the metrics land on its registry
row beside LIVE's and popularity's) and judges it like any model (``gate.judge``), but never makes it LIVE:
a winner becomes a CANDIDATE, to be A/B tested against the LIVE model (``POST /models/ab-test``, which
makes its arm ready through ``recsys.pipeline.release.prepare_arm``) or promoted by an operator
(``python -m recsys models promote``); otherwise it is archived. One LIVE switch per night stays the main
line's, so the two branches never race for the LIVE slot. ``RECSYS_SEQUENTIAL_NIGHTLY=false`` skips the
branch. A re-run with the same params reuses the model while its files are in the store.
"""

from __future__ import annotations

import datetime as dt
import logging

from recsys.pipeline.steps import Skip, recorded, step
from recsys.settings import get_settings

log = logging.getLogger(__name__)


@recorded(step("train_sequential"))
def train_sequential(engine, store, day: dt.date, params: dict | None) -> dict:
    from recsys import registry
    from recsys.data.errors import NoTrainingDataError
    from recsys.families import ConfigBase, TrainParams, family_of, options_from_settings
    from recsys.flows.nightly import log_params
    from recsys.pipeline.train import train_model

    settings = get_settings()
    if not settings.sequential_nightly:
        raise Skip("RECSYS_SEQUENTIAL_NIGHTLY is off: no challenger model this run")
    family = family_of(settings.challenger_family)
    why = family.unavailable()
    if why:  # e.g. make run's laptop install: skipped, not a failed task retried until the run gives up
        log.warning("%s", why)
        raise Skip(f"{why}: no {family.name} model this run (RECSYS_SEQUENTIAL_NIGHTLY=false turns the branch off)")
    run = log_params(day, params)
    train_params = TrainParams.from_settings(settings, window_days=run.window_days)
    config = family.default_config(ConfigBase(train_params, options=options_from_settings(settings)))
    recorded = {"window_days": run.window_days, **config}  # what this branch's re-runs match
    existing = registry.find_trained(engine, day, recorded)
    # reused only while its files are there: retention deletes an archived model's folder, and a
    # re-run days later (a dry run of yesterday after a week of nights) must train again, not fail to load
    if existing is not None and family.saved(store, existing.model_id):
        log.info("re-run for %s: reusing %s model %s trained with the same params", day, family.name, existing.model_id)
        return {"model_id": existing.model_id, "artifact_uri": existing.artifact_uri, "reused": True,
                "samples": existing.training_samples_count, "day": day.isoformat()}
    try:
        trained = train_model(engine, store, day, train_params, family=family.name, config=config, record=recorded)
    except NoTrainingDataError as exc:
        reason = str(exc) if "nothing to train" in str(exc) else f"{exc}: nothing to train the {family.name} model on"
        raise Skip(reason) from exc
    return {**trained, "day": day.isoformat()}


@recorded(step("evaluate_sequential"))
def evaluate_sequential(engine, store, day: dt.date, model_id: str, params: dict | None) -> dict:
    """Hold-out metrics of the challenger (the gate's, as for every model), then CANDIDATE (it beats LIVE and
    popularity: ``POST /models/ab-test`` tests it against the LIVE model, which makes its arm ready) or
    ARCHIVED."""
    from recsys import registry
    from recsys.constants import STATUS_TRAINING
    from recsys.evaluation.gate import evaluate_candidate, judge
    from recsys.flows.nightly import RunParams

    settings = get_settings()
    metrics = evaluate_candidate(engine, store, day, model_id, settings=settings)
    headline = {f"{name}_ndcg@10": (m or {}).get("ndcg@10") for name, m in metrics.items() if name != "protocol"}
    row = registry.get_model(engine, model_id)
    if row.status != STATUS_TRAINING:  # a re-run: the decision was taken (or an operator acted)
        return {"model_id": model_id, "decision": "kept", "status": row.status, **headline, "day": day.isoformat()}
    wins, why = judge(metrics, settings.promotion_margin)
    run = RunParams.from_params(params)
    if run.challenger_candidate and not wins:  # the operator asked for an A/B test whatever the hold-out day says
        why = f"kept for an A/B test by the run's challenger_candidate param; the gate: {why}"
    if (wins or run.challenger_candidate) and not run.dry_run:
        registry.mark_candidate(engine, model_id, reason=f"{row.params.get('family')} A/B candidate: {why}")
        decision = "candidate"
    else:
        kept = wins or run.challenger_candidate  # archived only because of the dry run
        registry.archive(engine, model_id, reason="dry run: evaluated, never a candidate" if kept else why)
        decision = "archived"
    log.info("challenger %s on %s: %s (%s)", model_id, day, decision, why)
    return {"model_id": model_id, "decision": decision, "reason": why, **headline, "day": day.isoformat()}

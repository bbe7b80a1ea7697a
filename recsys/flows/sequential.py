"""The nightly DAG's sequential branch: a parallel path after validate, beside the hybrid's train.

``train_sequential`` trains the session model on the same window as the hybrid (the run's
``window_days``), time-boxed by ``RECSYS_SEQUENTIAL_TIME_BUDGET_SECONDS`` (600 s of 2 cores by default,
well inside the 4 h ``RECSYS_DAG_DEADLINE_HOURS``), and registers it (``recsys.families.sequential.store``).
``evaluate_sequential`` scores it on the hold-out day with the hybrid's protocol
(``evaluate_candidate``: the metrics land on its registry row beside LIVE's and popularity's) and judges
it like any model (``registry.judge``), but never promotes it itself: a winner becomes a CANDIDATE,
to be A/B tested against the LIVE model (``python -m recsys abtest start``) or promoted by an operator
(``python -m recsys models promote``); otherwise it is archived. One LIVE switch per night stays the
hybrid branch's, so the two branches never race for the LIVE slot.
``RECSYS_SEQUENTIAL_NIGHTLY=false`` skips the branch. A re-run with the same params reuses the model while its files are in the store.
"""

from __future__ import annotations

import datetime as dt
import logging

from recsys.flows.steps import Skip, recorded
from recsys.settings import get_settings

log = logging.getLogger(__name__)


@recorded("train_sequential")
def train_sequential(engine, store, day: dt.date, params: dict | None) -> dict:
    from recsys import registry
    from recsys.flows.nightly import log_params
    from recsys.families.sequential.store import (
        NoSequencesError,
        config_from_settings,
        sequential_saved,
        train_sequential_model,
        training_unavailable,
    )

    settings = get_settings()
    if not settings.sequential_nightly:
        raise Skip("RECSYS_SEQUENTIAL_NIGHTLY is off: no sequential model this run")
    why = training_unavailable()
    if why:  # e.g. make run's laptop install: skipped, not a failed task retried until the run gives up
        log.warning("%s", why)
        raise Skip(f"{why}: no sequential model this run (RECSYS_SEQUENTIAL_NIGHTLY=false turns the branch off)")
    run = log_params(day, params)
    config = config_from_settings(settings)
    existing = registry.find_trained(engine, day, {"window_days": run.window_days, **config.as_dict()})
    # reused only while its files are there: retention deletes an archived model's folder, and a
    # re-run days later (a dry run of yesterday after a week of nights) must train again, not fail to load
    if existing is not None and sequential_saved(store, existing.model_id):
        log.info("re-run for %s: reusing sequential model %s trained with the same params", day, existing.model_id)
        return {"model_id": existing.model_id, "artifact_uri": existing.artifact_uri, "reused": True,
                "samples": existing.training_samples_count, "day": day.isoformat()}
    try:
        trained = train_sequential_model(engine, store, day, run.window_days, config)
    except NoSequencesError as exc:
        raise Skip(str(exc)) from exc
    return {**trained, "day": day.isoformat()}


@recorded("evaluate_sequential")
def evaluate_sequential(engine, store, day: dt.date, model_id: str, params: dict | None) -> dict:
    """Hold-out metrics of the sequential model, then CANDIDATE (it beats LIVE and popularity) or ARCHIVED."""
    from recsys import registry
    from recsys.constants import STATUS_TRAINING
    from recsys.evaluation.holdout import evaluate_candidate
    from recsys.flows.nightly import RunParams

    metrics = evaluate_candidate(engine, store, day, model_id)
    headline = {f"{name}_ndcg@10": (m or {}).get("ndcg@10") for name, m in metrics.items() if name != "protocol"}
    row = registry.get_model(engine, model_id)
    if row.status != STATUS_TRAINING:  # a re-run: the decision was taken (or an operator acted)
        return {"model_id": model_id, "decision": "kept", "status": row.status, **headline, "day": day.isoformat()}
    wins, why = registry.judge(metrics, get_settings().promotion_margin)
    if wins and not RunParams.from_params(params).dry_run:
        registry.mark_candidate(engine, model_id, reason=f"sequential A/B candidate: {why}")
        decision = registry.DECISION_CANDIDATE
    else:
        registry.archive(engine, model_id, reason=why if not wins else "dry run: evaluated, never a candidate")
        decision = registry.DECISION_ARCHIVED
    log.info("sequential %s on %s: %s (%s)", model_id, day, decision, why)
    return {"model_id": model_id, "decision": decision, "reason": why, **headline, "day": day.isoformat()}

"""The nightly run, one function per Airflow task of ``dags/recsys_nightly.py``.

Each function receives ready clients, the processed day and the run's params
(the DAG's trigger form), calls the step modules and returns a small dict for
XCom. This is where I/O and decisions meet; the DAG file is only wiring.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from recsys.settings import Settings, get_settings

log = logging.getLogger(__name__)


class Skip(Exception):
    """Nothing to do for this task in this run (the DAG marks the task skipped)."""


@dataclass(frozen=True)
class RunParams:
    """The manual-trigger form of the nightly DAG, with the settings as defaults."""

    window_days: int
    epochs: int
    loss: str
    force_promotion: bool
    dry_run: bool
    promotion_policy: str

    @classmethod
    def from_params(cls, params: dict | None, settings: Settings | None = None) -> "RunParams":
        settings = settings or get_settings()
        params = {k: v for k, v in (params or {}).items() if v is not None}
        return cls(
            window_days=int(params.get("window_days", settings.training_window_days)),
            epochs=int(params.get("epochs", settings.epochs)),
            loss=str(params.get("loss", settings.loss)),
            force_promotion=bool(params.get("force_promotion", False)),
            dry_run=bool(params.get("dry_run", False)),
            promotion_policy=str(params.get("promotion_policy", settings.promotion_policy)),
        )


def extract(engine, store, day: dt.date) -> dict:
    from recsys.pipeline.extract import extract_day

    return extract_day(engine, store, day)


def validate(engine, store, day: dt.date) -> dict:
    from recsys.pipeline.validate import validate_day

    return validate_day(engine, store, day)


def train(engine, store, day: dt.date, params: dict | None) -> dict:
    """Train for ``day``; a re-run with the same params reuses the model already trained for it."""
    from dataclasses import asdict

    from recsys import registry
    from recsys.artifacts import model_key
    from recsys.model.train import TrainParams, train_model

    run = RunParams.from_params(params)
    train_params = TrainParams.from_settings(
        get_settings(), window_days=run.window_days, epochs=run.epochs, loss=run.loss
    )
    existing = registry.find_trained(engine, day, asdict(train_params))
    if existing is not None and store.exists(model_key(existing.model_id, "model.pkl")):
        log.info("re-run for %s: reusing model %s trained with the same params", day, existing.model_id)
        return {"model_id": existing.model_id, "artifact_uri": existing.artifact_uri,
                "samples": existing.training_samples_count, "reused": True}
    return train_model(engine, store, day, train_params)


def evaluate(engine, store, day: dt.date, model_id: str) -> dict:
    from recsys.model.evaluate import evaluate_candidate

    metrics = evaluate_candidate(engine, store, day, model_id)
    # XCom carries the headline numbers only; the full metrics are on the registry row
    return {
        "model_id": model_id,
        **{f"{name}_ndcg@10": (m or {}).get("ndcg@10") for name, m in metrics.items() if name != "protocol"},
    }


def promote_or_archive(engine, model_id: str, params: dict | None) -> dict:
    from recsys import registry

    run = RunParams.from_params(params)
    if run.dry_run:
        registry.archive(engine, model_id, reason="dry run: evaluated, never promoted")
        return {"decision": "archived", "model_id": model_id, "reason": "dry run", "dry_run": True}
    decision = registry.decide(
        engine,
        model_id,
        margin=get_settings().promotion_margin,
        force=run.force_promotion,
        policy=run.promotion_policy,
    )
    return {"model_id": model_id, "dry_run": False, **decision}


def publish(engine, store, decision: dict) -> dict:
    from recsys.pipeline.publish import publish_model

    if decision.get("dry_run"):
        raise Skip("dry run: nothing is published")
    return publish_model(engine, store, decision["model_id"], keep=get_settings().keep_model_versions)


def segments(engine, day: dt.date, decision: dict) -> list[str]:
    from recsys import registry
    from recsys.pipeline.precompute import active_segments

    if decision.get("dry_run"):
        raise Skip("dry run: live recommendations are left as they are")
    if registry.get_live(engine) is None:
        log.warning("no LIVE model yet: no personalised lists this run (fallback lists only)")
        return []
    return active_segments(engine, day)


def precompute_segment(engine, store, redis, day: dt.date, segment: str) -> dict:
    from recsys.pipeline.precompute import precompute_segment as run

    return run(engine, store, redis, day, segment)


def lists(engine, store, redis, day: dt.date, decision: dict) -> dict:
    from recsys.pipeline.precompute import precompute_lists

    if decision.get("dry_run"):
        raise Skip("dry run: live lists are left as they are")
    return precompute_lists(engine, store, redis, day)

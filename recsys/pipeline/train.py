"""The nightly training step: train a model of any family (``recsys.families``) on a window of events and
register it (status TRAINING).

The training window for day ``D`` is ``[D - window_days + 1, D)``: it ends the day
before ``D``, because ``D`` itself is the temporal hold-out that evaluate scores.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict

from sqlalchemy import Engine

from recsys.artifacts import ArtifactStore, model_key
from recsys.data.frames import (
    NoTrainingDataError, load_products, load_signal_events, load_training_frame, load_users,
)
from recsys.families import DEFAULT_FAMILY, ConfigBase, TrainingData, TrainParams, family_of
from recsys.timeutil import day_start_ms

log = logging.getLogger(__name__)


def training_data(engine: Engine, first: dt.date, day: dt.date) -> TrainingData:
    """The window ``[first, day)``: its aggregated frame (``NoTrainingDataError`` when empty), the users and
    the catalogue, and its signal events read when a family asks for them."""
    frame = load_training_frame(engine, first, day)
    if frame.empty:
        last = day - dt.timedelta(days=1)
        raise NoTrainingDataError(f"no interactions between {first} and {last} (training window for {day})")
    start, end = day_start_ms(first), day_start_ms(day)
    return TrainingData(frame, load_users(engine), load_products(engine),
                        events_loader=lambda: load_signal_events(engine, start, end))


def train_model(engine: Engine, store: ArtifactStore, day: dt.date, params: TrainParams, *,
                family: str = DEFAULT_FAMILY, config: dict | None = None, record: dict | None = None) -> dict:
    """Train a model of ``family`` (``recsys.families``) on ``[day - window_days + 1, day)``, save its files
    (``models/<id>/``), register it as TRAINING (the family's ``model_type``) with the files' checksums.

    ``config``: the family's recorded configuration (without one, its default for ``params``);
    ``record``: more keys for the row's ``params`` (the model selection's table)."""
    from ulid import ULID

    from recsys import registry

    kind = family_of(family)
    first, last = params.train_days(day)
    started = time.perf_counter()
    data = training_data(engine, first, day)
    train_days = [first.isoformat(), last.isoformat()]
    fit_config = config if config is not None else kind.default_config(ConfigBase(params))
    model = kind.fit(data, fit_config, seed=params.seed, threads=params.threads)
    model.info.update({"train_days": train_days, "params": asdict(params), "family": family})
    model_id = str(ULID())
    checksums = model.save(store, model_id)
    uri = store.uri(model_key(model_id, kind.own_files(store, model_id)[-1]))
    seconds = round(time.perf_counter() - started, 3)
    samples = len(data.events) if data.events is not None else len(data.frame)  # what the family read
    summary = getattr(model, "training_summary", None)
    registry.register_model(engine, model_id=model_id, model_type=kind.model_type, train_date=day,
                            params={**asdict(params), "family": family, "config": config, **(record or {}),
                                    "train_days": train_days, "train_seconds": seconds,
                                    **({"training": summary} if summary else {})},
                            samples=samples, artifact_uri=uri, artifacts=checksums)
    log.info("trained %s (%s) on %d rows (%s..%s) in %.1fs", model_id, family, samples, first, last, seconds)
    return {"model_id": model_id, "artifact_uri": uri, "samples": int(samples), "train_days": train_days,
            "train_seconds": seconds, "family": family,
            **({"stopped": summary.get("stopped"), "epochs": summary.get("epochs")} if summary else {})}

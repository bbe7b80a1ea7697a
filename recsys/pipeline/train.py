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
from recsys.data.frames import NoTrainingDataError, load_products, load_training_frame, load_users
from recsys.families.hybrid.fit import TrainParams, fit_hybrid

log = logging.getLogger(__name__)


# --- the nightly step ------------------------------------------------------------
def train_model(engine: Engine, store: ArtifactStore, day: dt.date, params: TrainParams, *,
                family: str = "hybrid", config: dict | None = None, record: dict | None = None) -> dict:
    """Train on ``[day - window_days + 1, day)``, save ``models/<id>/model.npz`` + ``model.json``,
    register as TRAINING (``model_type`` of the family) with the files' checksums.

    ``family``/``config``: a family of ``recsys.families.registry`` and its recorded configuration
    (without one, the hybrid with ``params``); ``record``: more keys for the row's ``params``
    (the model selection's table). A family that reads its own training data (the sequential model:
    ordered events, ``model_type`` ``SEQUENTIAL``) trains, saves and registers through its ``train``,
    on the same window and with the same params layout."""
    from ulid import ULID

    from recsys import registry
    from recsys.families.registry import family_of, fit_family

    trains_itself = family_of(family).train
    if trains_itself is not None:
        return trains_itself(engine, store, day, params, config, record)
    first, last = params.train_days(day)
    started = time.perf_counter()
    frame = load_training_frame(engine, first, day)
    if frame.empty:
        raise NoTrainingDataError(f"no interactions between {first} and {last} (training window for {day})")
    train_days = [first.isoformat(), last.isoformat()]
    info = {"train_days": train_days, "params": asdict(params), "family": family}
    users, products = load_users(engine), load_products(engine)
    if config is None and family == "hybrid":
        model = fit_hybrid(frame, users, products, params, info=info)
    else:
        model = fit_family(family, frame, users, products, config or {}, seed=params.seed,
                           threads=params.threads, info=info)
    model_id = str(ULID())
    from recsys.families.files import MODEL_META

    checksums = model.save(store, model_id)
    uri = store.uri(model_key(model_id, MODEL_META))
    seconds = round(time.perf_counter() - started, 3)
    registry.register_model(engine, model_id=model_id, model_type=family_of(family).model_type, train_date=day,
                            params={**asdict(params), "family": family, "config": config, **(record or {}),
                                    "train_days": train_days, "train_seconds": seconds},
                            samples=len(frame), artifact_uri=uri, artifacts=checksums)
    log.info("trained %s (%s) on %d pairs (%s..%s) in %.1fs", model_id, family, len(frame), first, last, seconds)
    return {"model_id": model_id, "artifact_uri": uri, "samples": int(len(frame)), "train_days": train_days,
            "train_seconds": seconds, "family": family}

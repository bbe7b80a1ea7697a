"""The sequential model as a registry family: trained on the window, saved with checksums, loaded verified.

- ``train_sequential_model``: the signal events of ``[day - window_days + 1, day)`` (the same window as
  the hybrid, ``TrainParams.train_days``), ``fit_sequential`` (time-boxed by
  ``RECSYS_SEQUENTIAL_TIME_BUDGET_SECONDS``), the ONNX export written to a local folder, every file
  uploaded to ``models/<model_id>/`` (``config.json`` last), then registered as TRAINING with
  ``model_type`` ``SEQUENTIAL`` and the SHA-256 of each file (write, then point).
- ``train_family``: the ``train`` of the ``sequential`` entry of ``recsys.families.registry`` (what
  ``recsys.pipeline.train.train_model`` calls when the nightly main line trains the sequential model): the
  same training, its row's params laid out like every family's (the run's ``TrainParams``, ``family``,
  ``config``, the selection's record), so the nightly sequential branch's re-runs, which match the
  configuration's keys at the top level of ``params``, never take the main line's model for theirs.
- ``load_sequential``: the files downloaded to a local folder, each checked against the registry's
  record before it is parsed (``ArtifactIntegrityError`` naming the file otherwise), then opened
  with ``recsys.families.sequential.scoring.load_runtime`` (onnxruntime + numpy: no torch here).
Torch is imported inside ``train_sequential_model`` only (requirements-train.txt).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select

from recsys.artifacts import ArtifactStore, model_key
from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_TIMESTAMP, COL_USER, MODEL_TYPE_SEQUENTIAL
from recsys.db.models import UserEvent
from recsys.integrity import folder_checksums, verify_file
from recsys.families.sequential import config as C
from recsys.families.sequential.config import SequentialConfig
from recsys.families.sequential.data import SIGNAL_EVENTS
from recsys.timeutil import day_start_ms

log = logging.getLogger(__name__)
# upload order: config.json last, so a folder with it is complete
SEQUENTIAL_FILES = (C.ENCODER_FILE, C.PRODUCT_IDS_FILE, C.ITEM_VECTORS_FILE, C.ITEM_CATEGORIES_FILE,
                    C.ITEM_BANDS_FILE, C.CATEGORY_VECTORS_FILE, C.BAND_VECTORS_FILE, C.CONFIG_FILE)
EVENT_COLUMNS = [COL_USER, COL_ITEM, COL_EVENT_TYPE, COL_TIMESTAMP]


def training_unavailable() -> str | None:
    """Why the sequential model cannot be trained in this installation (torch and the ONNX exporter of
    ``requirements-train.txt`` are missing: the API's and ``make run``'s), or None."""
    try:
        import recsys.families.sequential.export  # noqa: F401  (torch.onnx, onnx, onnxscript)
        import recsys.families.sequential.train  # noqa: F401  (torch)
    except ImportError as exc:
        return f"the sequential model needs torch and onnx ({exc}); pip install -r requirements-train.txt"
    return None


class NoSequencesError(ValueError):
    """The training window has no user with two products: nothing to train the sequential model on."""


def config_from_settings(settings, **overrides) -> SequentialConfig:
    """The model's defaults, with the time budget, threads and seed of the settings (overrides win)."""
    values = {"time_budget_s": settings.sequential_time_budget_seconds,
              "threads": settings.train_threads or os.cpu_count() or 1, "seed": settings.seed}
    return dataclasses.replace(SequentialConfig(), **{**values, **overrides})


def load_events(engine: Engine, start_ms: int, end_ms: int, user_ids: list[int] | None = None) -> pd.DataFrame:
    """Signal events (``recsys.families.sequential.data.SIGNAL_EVENTS``) in ``[start_ms, end_ms)``, time order,
    of ``user_ids`` when given."""
    e = UserEvent
    stmt = select(e.user_id, e.product_id, e.event_type, e.timestamp).where(
        e.timestamp >= start_ms, e.timestamp < end_ms, e.event_type.in_(SIGNAL_EVENTS),
        e.user_id.is_not(None), e.product_id.is_not(None))
    if user_ids is not None:
        stmt = stmt.where(e.user_id.in_([int(u) for u in user_ids]))
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(e.timestamp, e.event_id)).all()
    return pd.DataFrame(rows, columns=EVENT_COLUMNS).astype({COL_USER: "int64", COL_ITEM: "int64",
                                                             COL_TIMESTAMP: "int64"})


def upload_folder(store: ArtifactStore, model_id: str, folder: Path) -> dict[str, str]:
    """Upload the exported files (``config.json`` last); returns their ``{name: sha256}`` for the registry."""
    checksums = folder_checksums(folder, SEQUENTIAL_FILES)
    for name in SEQUENTIAL_FILES:
        store.upload(folder / name, model_key(model_id, name))
    return checksums


def sequential_saved(store: ArtifactStore, model_id: str) -> bool:
    """The model's folder is complete in the store (``config.json`` is uploaded last); retention may
    have deleted an archived model's files while its registry row stays."""
    return store.exists(model_key(model_id, C.CONFIG_FILE))


def train_sequential_model(engine: Engine, store: ArtifactStore, day: dt.date, window_days: int,
                           config: SequentialConfig, recorded: Mapping | None = None) -> dict:
    """Train on ``[day - window_days + 1, day)``, save ``models/<id>/`` with checksums, register as TRAINING.

    ``recorded``: the row's params before the training's own keys (default: ``window_days`` and the
    configuration's fields, what the nightly sequential branch's re-runs match)."""
    from ulid import ULID

    from recsys import registry
    from recsys.data.frames import load_products
    from recsys.families.sequential.export import export_model
    from recsys.families.sequential.train import fit_sequential

    first, last = day - dt.timedelta(days=window_days - 1), day - dt.timedelta(days=1)
    started = time.perf_counter()
    events = load_events(engine, day_start_ms(first), day_start_ms(day))
    longest = int(events.groupby(COL_USER)[COL_ITEM].nunique().max()) if len(events) else 0
    if longest < config.min_sequence:
        raise NoSequencesError(f"no user has {config.min_sequence} products between {first} and {last}: "
                               "nothing to train the sequential model on")
    fitted = fit_sequential(events, load_products(engine), config)
    model_id = str(ULID())
    with tempfile.TemporaryDirectory(prefix="recsys-sequential-") as tmp:
        folder = export_model(fitted, Path(tmp) / model_id)
        checksums = upload_folder(store, model_id, folder)
    seconds = round(time.perf_counter() - started, 3)
    train_days = [first.isoformat(), last.isoformat()]
    uri = store.uri(model_key(model_id, C.CONFIG_FILE))
    registry.register_model(engine, model_id=model_id, model_type=MODEL_TYPE_SEQUENTIAL, train_date=day,
                            params={**(recorded if recorded is not None else
                                       {"window_days": window_days, **config.as_dict()}),
                                    "train_days": train_days, "train_seconds": seconds, "training": fitted.summary()},
                            samples=len(events), artifact_uri=uri, artifacts=checksums)
    log.info("trained sequential %s on %d events (%s..%s) in %.1fs: %s", model_id, len(events), first, last,
             seconds, fitted.summary())
    return {"model_id": model_id, "artifact_uri": uri, "samples": int(len(events)), "train_days": train_days,
            "train_seconds": seconds, "stopped": fitted.stopped, "epochs": len(fitted.history)}


def train_family(engine: Engine, store: ArtifactStore, day: dt.date, params, config: Mapping | None,
                 record: Mapping | None) -> dict:
    """``train_model`` of the ``sequential`` family: trained on the run's window (``params``, a
    ``TrainParams``) with ``config`` (a ``SequentialConfig`` as a dict, the selection's candidate; none:
    ``config_from_settings``), registered with the params every family's row has (``record``: the selection)."""
    if config:
        config = SequentialConfig(**config)
    else:
        from recsys.settings import get_settings

        config = config_from_settings(get_settings())
    from recsys.families.registry import SEQUENTIAL

    recorded = {**dataclasses.asdict(params), "family": SEQUENTIAL, "config": config.as_dict(), **(record or {})}
    trained = train_sequential_model(engine, store, day, params.window_days, config, recorded)
    return {**trained, "family": SEQUENTIAL}


def download_verified(store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None,
                      folder: Path) -> Path:
    """The model's files in ``folder``, each verified against ``checksums`` before anything reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SEQUENTIAL_FILES:
        key = model_key(model_id, name)
        path = store.download(key, folder / name)  # FileNotFoundError for a missing file
        try:
            verify_file(path, checksums, name, store.uri(key))
        except ValueError:
            path.unlink(missing_ok=True)  # an unverified file is not left where a later load could find it
            raise
    return folder


def load_sequential(store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None,
                    folder: Path | None = None, threads: int = 1):
    """The verified ``SequentialRuntime`` of a registered model (files kept in ``folder`` when given:
    the API's per-node cache; else read into memory from a temporary folder)."""
    from recsys.families.sequential.scoring import load_runtime

    if folder is not None:
        return load_runtime(download_verified(store, model_id, checksums, Path(folder)), threads=threads)
    with tempfile.TemporaryDirectory(prefix="recsys-sequential-") as tmp:
        return load_runtime(download_verified(store, model_id, checksums, Path(tmp)), threads=threads, mmap=False)

"""Train a model (the hybrid LightFM, or any family of ``recsys.model.families``) on a window of events and register it (status TRAINING).

The training window for day ``D`` is ``[D - window_days + 1, D)``: it ends the day
before ``D``, because ``D`` itself is the temporal hold-out that evaluate scores.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Float, case, cast, func, literal, select

from recsys.artifacts import ArtifactStore, model_key
from recsys.constants import COL_ITEM, COL_USER, EVENT_WEIGHTS, PURCHASE
from recsys.db.models import Product, User, UserEvent
from recsys.model.features import (
    ITEM_COLUMNS,
    USER_COLUMNS,
    ITEM_FEATURES,
    USER_FEATURES,
    FeatureSpace,
    align_rows,
    check_feature_names,
    item_attributes,
    keep_features,
    require_columns,
    token_vocabulary,
    user_attributes,
    value_segments,
)
from recsys.model.hybrid import HybridModel
from recsys.settings import default
from recsys.timeutil import day_start_ms

log = logging.getLogger(__name__)
LOSSES = ("warp", "bpr", "logistic", "warp-kos")
FRAME_COLUMNS = (COL_USER, COL_ITEM, "weight", "purchases", "spend")
AGGREGATE_WORK_MEM = "256MB"


class NoTrainingDataError(ValueError):
    """The training window holds no usable interactions."""


@dataclass(frozen=True)
class TrainParams:
    """What a model is trained with. The defaults are the settings' defaults: the configuration tuned
    by ``python -m recsys evaluate --tune`` on UCI Online Retail (bench/results/online_retail.md)."""

    window_days: int = default("training_window_days")
    epochs: int = default("epochs")
    loss: str = default("loss")
    no_components: int = default("no_components")
    learning_rate: float = default("learning_rate")
    item_alpha: float = default("item_alpha")
    user_alpha: float = default("user_alpha")
    threads: int = default("train_threads")  # 0 = all cores
    seed: int = default("seed")
    user_features: tuple[str, ...] = default("user_features")  # groups of recsys.model.features.USER_FEATURES
    item_features: tuple[str, ...] = default("item_features")  # ... and of ITEM_FEATURES

    def __post_init__(self):
        object.__setattr__(self, "user_features", tuple(self.user_features))
        object.__setattr__(self, "item_features", tuple(self.item_features))
        check_feature_names(self.user_features, self.item_features)
        checks = {
            "window_days >= 2": self.window_days >= 2,
            "epochs >= 1": self.epochs >= 1,
            f"loss in {LOSSES}": self.loss in LOSSES,
            "no_components >= 1": self.no_components >= 1,
            "learning_rate > 0": self.learning_rate > 0,
            "item_alpha >= 0 and user_alpha >= 0": self.item_alpha >= 0 and self.user_alpha >= 0,
            "threads >= 0": self.threads >= 0,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid TrainParams {asdict(self)}: need {', '.join(failed)}")

    @classmethod
    def from_settings(cls, settings, **overrides) -> TrainParams:
        """Defaults from the settings object; keyword overrides win (``None`` means "keep")."""
        values = dict(
            window_days=settings.training_window_days, epochs=settings.epochs, loss=settings.loss,
            no_components=settings.no_components, learning_rate=settings.learning_rate,
            item_alpha=settings.item_alpha, user_alpha=settings.user_alpha,
            threads=settings.train_threads, seed=settings.seed,
            user_features=tuple(settings.user_features), item_features=tuple(settings.item_features),
        )
        unknown = set(overrides) - set(values)
        if unknown:
            raise ValueError(f"unknown TrainParams field(s): {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def num_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    def train_days(self, day: dt.date) -> tuple[dt.date, dt.date]:
        """First and last (inclusive) day of the training window for hold-out ``day``."""
        return day - dt.timedelta(days=self.window_days - 1), day - dt.timedelta(days=1)


# --- reading ------------------------------------------------------------------
def _training_query(start_day: dt.date, end_day_exclusive: dt.date):
    e = UserEvent
    weighted = {t: w for t, w in EVENT_WEIGHTS.items() if w != 0}
    weight = func.sum(case({t: cast(literal(w), Float) for t, w in weighted.items()}, value=e.event_type))
    is_purchase = e.event_type == PURCHASE
    return (
        select(
            e.user_id, e.product_id, weight.label("weight"),
            func.sum(case((is_purchase, 1), else_=0)).label("purchases"),
            func.sum(case((is_purchase, func.coalesce(e.price, 0.0)), else_=0.0)).label("spend"),
        )
        .where(
            e.timestamp >= day_start_ms(start_day), e.timestamp < day_start_ms(end_day_exclusive),
            e.event_type.in_(list(weighted)), e.user_id.is_not(None), e.product_id.is_not(None),
        )
        .group_by(e.user_id, e.product_id)
        .having(weight > 0)
    )


def _copy_out(engine: Engine, stmt, columns: list[str]) -> pd.DataFrame:
    """PostgreSQL: stream a query's rows with ``COPY ... TO STDOUT`` (no per-row Python objects).

    The statement is rendered with literal values: only ints, dates and our own constants go in.
    """
    sql = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    buf = io.BytesIO()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'")  # hash-aggregate in memory, not on disk
        with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for chunk in copy:
                buf.write(chunk)
        raw.rollback()
    finally:
        raw.close()
    buf.seek(0)
    if not buf.getbuffer().nbytes:
        return pd.DataFrame(columns=columns)
    return pd.read_csv(buf, header=None, names=columns)


def load_training_frame(engine: Engine, start_day: dt.date, end_day_exclusive: dt.date) -> pd.DataFrame:
    """Per (user_id, product_id): summed event weights, purchases and spend in ``[start_day, end_day_exclusive)``.

    Aggregated in SQL; IMPRESSION (weight 0) is ignored and pairs with net weight <= 0
    (e.g. bought then returned) are dropped. On PostgreSQL the rows come back through COPY.
    """
    if end_day_exclusive <= start_day:
        raise ValueError(f"empty day range [{start_day}, {end_day_exclusive})")
    stmt = _training_query(start_day, end_day_exclusive)
    if engine.dialect.name == "postgresql":
        frame = _copy_out(engine, stmt, list(FRAME_COLUMNS))
    else:
        with engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(stmt).all(), columns=list(FRAME_COLUMNS))
    return frame.astype({COL_USER: "int64", COL_ITEM: "int64", "weight": "float64", "purchases": "int64", "spend": "float64"})


def load_users(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(select(*(getattr(User, c) for c in USER_COLUMNS))).all()
    return pd.DataFrame(rows, columns=list(USER_COLUMNS))


def load_products(engine: Engine) -> pd.DataFrame:
    """The catalogue (every product), ordered by product_id."""
    cols = ITEM_COLUMNS + ("in_stock", "created_at")
    with engine.connect() as conn:
        rows = conn.execute(select(*(getattr(Product, c) for c in cols)).order_by(Product.product_id)).all()
    return pd.DataFrame(rows, columns=list(cols))


# --- fitting (pure) --------------------------------------------------------------
def sample_weights(weight: pd.Series) -> np.ndarray:
    """Interaction weight used in training: ``1 + log(weight)`` damps heavy repeat users."""
    return (1.0 + np.log(np.maximum(weight.to_numpy(dtype=float), 1.0))).astype(np.float32)


def fit_hybrid(frame: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame, params: TrainParams,
               info: dict | None = None) -> HybridModel:
    """Fit LightFM on an aggregated training frame (see :func:`load_training_frame`)."""
    from lightfm import LightFM
    from lightfm.data import Dataset

    require_columns(frame, (COL_USER, COL_ITEM, "weight"), "training")
    frame = frame[frame["weight"] > 0]
    if frame.empty:
        raise NoTrainingDataError("no interactions with a positive weight to train on")
    user_ids, item_ids = pd.unique(frame[COL_USER]), pd.unique(frame[COL_ITEM])
    user_rows = align_rows(user_ids, users, COL_USER, USER_COLUMNS)
    item_rows = align_rows(item_ids, products, COL_ITEM, ITEM_COLUMNS)
    segments = value_segments(frame, user_rows) if "purchases" in frame.columns else None
    vocabulary = token_vocabulary(item_rows["name"])
    user_attrs = keep_features(user_attributes(user_rows, segments), params.user_features, USER_FEATURES)
    item_attrs = keep_features(item_attributes(item_rows, vocabulary), params.item_features, ITEM_FEATURES)

    dataset = Dataset()
    dataset.fit(user_ids.tolist(), item_ids.tolist(), user_features=user_attrs["feature"].unique().tolist(),
                item_features=item_attrs["feature"].unique().tolist())
    interactions, weights = dataset.build_interactions(
        zip(frame[COL_USER].tolist(), frame[COL_ITEM].tolist(), sample_weights(frame["weight"]).tolist())
    )
    user_map, user_feature_map, item_map, item_feature_map = dataset.mapping()
    user_space = FeatureSpace.from_mapping(user_map, user_feature_map)
    item_space = FeatureSpace.from_mapping(item_map, item_feature_map)
    model = LightFM(no_components=params.no_components, loss=params.loss, learning_rate=params.learning_rate,
                    item_alpha=params.item_alpha, user_alpha=params.user_alpha,
                    random_state=np.random.RandomState(params.seed))
    model.fit(interactions, user_features=user_space.matrix(user_ids, user_attrs),
              item_features=item_space.matrix(item_ids, item_attrs),
              sample_weight=None if params.loss == "warp-kos" else weights,  # warp-kos takes no weights
              epochs=params.epochs, num_threads=params.num_threads)
    if segments is None:
        segments = pd.Series(dtype=object)
    return HybridModel(model, user_space, item_space, vocabulary, segments, info)


# --- the nightly step ------------------------------------------------------------
def train_model(engine: Engine, store: ArtifactStore, day: dt.date, params: TrainParams, *,
                family: str = "hybrid", config: dict | None = None, record: dict | None = None) -> dict:
    """Train on ``[day - window_days + 1, day)``, save ``models/<id>/model.npz`` + ``model.json``,
    register as TRAINING (``model_type`` of the family) with the files' checksums.

    ``family``/``config``: a family of ``recsys.model.families`` and its recorded configuration
    (without one, the hybrid with ``params``); ``record``: more keys for the row's ``params``
    (the model selection's table). A family that reads its own training data (the sequential model:
    ordered events, ``model_type`` ``SEQUENTIAL``) trains, saves and registers through its ``train``,
    on the same window and with the same params layout."""
    from ulid import ULID

    from recsys import registry
    from recsys.model.families import family_of, fit_family

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
    from recsys.model.model_files import MODEL_META

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

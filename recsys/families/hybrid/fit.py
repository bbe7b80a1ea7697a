"""Fit the hybrid LightFM model on an aggregated training frame; ``TrainParams`` are its parameters (and the
run's training window, seed and threads)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from recsys.constants import COL_ITEM, COL_USER
from recsys.data.frames import ITEM_COLUMNS, USER_COLUMNS, NoTrainingDataError, align_rows, require_columns, value_segments
from recsys.families.hybrid.features import (
    ITEM_FEATURES,
    USER_FEATURES,
    FeatureSpace,
    check_feature_names,
    item_attributes,
    keep_features,
    token_vocabulary,
    user_attributes,
)
from recsys.families.hybrid.model import HybridModel
from recsys.settings import default

LOSSES = ("warp", "bpr", "logistic", "warp-kos")


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
    user_features: tuple[str, ...] = default("user_features")  # groups of recsys.families.hybrid.features.USER_FEATURES
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



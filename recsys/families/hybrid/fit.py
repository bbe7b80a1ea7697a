"""Fit the hybrid LightFM model on an aggregated training frame; ``TrainParams`` are its parameters (and the
run's training window, seed and threads)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.constants import COL_ITEM, COL_USER
from recsys.data.frames import (
    ITEM_COLUMNS, USER_COLUMNS, NoTrainingDataError, align_rows, require_columns, value_segments,
)
from recsys.families.hybrid.features import (
    FeatureSpace, item_attributes, keep_features, token_vocabulary, user_attributes,
)
from recsys.families.hybrid.params import ITEM_FEATURES, USER_FEATURES, TrainParams
from recsys.families.hybrid.model import HybridModel

__all__ = ["TrainParams", "fit_hybrid", "sample_weights"]


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



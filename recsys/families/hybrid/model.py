"""HybridModel: a fitted LightFM model plus what it needs to build feature rows for any user or product.

Ranking score of user u for item i is ``user_vector[u] @ item_vector[i]`` with
``user_vector = [embedding, 1.0]`` and ``item_vector = [embedding, item_bias]``
(the user bias is constant per user and dropped). Ids seen in training use their
identity feature plus attributes; unseen ids use attributes alone (cold start).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.artifacts import ArtifactStore
from recsys.constants import COL_ITEM, COL_USER
from recsys.data.frames import ITEM_COLUMNS, SEGMENT_NEW, USER_COLUMNS, require_columns
from recsys.families.hybrid.features import FeatureSpace, item_attributes, user_attributes

from recsys.families.files import ModelArtifactError
from recsys.families.hybrid.files import load_model, save_model
from recsys.families.vectors.scorer import VectorScorer, write_model_embeddings

__all__ = ["HybridModel", "ModelArtifactError"]


def _check_ids(df: pd.DataFrame, column: str, what: str) -> np.ndarray:
    ids = df[column]
    if ids.isna().any():
        raise ValueError(f"{what} frame has missing {column} values")
    return ids.to_numpy()


class HybridModel:
    """The fitted LightFM model, its feature spaces, token vocabulary and training-time user segments."""

    served_as, cold_start_users = "vectors", True  # informational (metadata.json): code asks the family

    def __init__(
        self,
        model: Any,
        user_space: FeatureSpace,
        item_space: FeatureSpace,
        vocabulary: frozenset[str],
        user_segments: pd.Series,
        info: dict | None = None,
    ):
        self.model = model
        self.user_space = user_space
        self.item_space = item_space
        self.vocabulary = frozenset(vocabulary)
        self.user_segments = user_segments
        self.info = dict(info or {})

    @property
    def dim(self) -> int:
        """Length of a user or item vector: LightFM components + 1 (bias column)."""
        return int(self.model.no_components) + 1

    @property
    def known_user_ids(self) -> np.ndarray:
        """Users seen in training (they have an identity feature), in model order."""
        return self.user_space.ids.to_numpy()

    @property
    def known_item_ids(self) -> np.ndarray:
        """Products seen in training, in model order."""
        return self.item_space.ids.to_numpy()

    # --- feature rows --------------------------------------------------------
    def user_features(self, users: pd.DataFrame, value_segment: pd.Series | None = None) -> sp.csr_matrix:
        """Feature rows of ``users``. A user's segment comes from ``value_segment`` (indexed by
        ``user_id``), else from training, else ``new``."""
        require_columns(users, USER_COLUMNS, "users")
        ids = _check_ids(users, COL_USER, "users")
        segments = self.user_segments.reindex(pd.Index(ids)).to_numpy(dtype=object)
        if value_segment is not None:
            given = value_segment[~value_segment.index.duplicated(keep="last")]
            given = given.reindex(pd.Index(ids)).to_numpy(dtype=object)
            segments = np.where(pd.isna(given), segments, given)
        segments = pd.Series(np.where(pd.isna(segments), SEGMENT_NEW, segments), index=pd.Index(ids))
        segments = segments[~segments.index.duplicated()]
        return self.user_space.matrix(ids, user_attributes(users, segments))

    def item_features(self, products: pd.DataFrame) -> sp.csr_matrix:
        require_columns(products, ITEM_COLUMNS, "products")
        ids = _check_ids(products, COL_ITEM, "products")
        return self.item_space.matrix(ids, item_attributes(products, self.vocabulary))

    # --- vectors ---------------------------------------------------------------
    def user_vectors(self, users: pd.DataFrame, value_segment: pd.Series | None = None) -> np.ndarray:
        """(n, d+1) float32: ``[embedding, 1.0]`` per row of ``users``."""
        _, emb = self.model.get_user_representations(self.user_features(users, value_segment))
        return np.hstack([emb, np.ones((emb.shape[0], 1))]).astype(np.float32)

    def item_vectors(self, products: pd.DataFrame) -> np.ndarray:
        """(m, d+1) float32: ``[embedding, item_bias]`` per row of ``products``."""
        bias, emb = self.model.get_item_representations(self.item_features(products))
        return np.hstack([emb, bias[:, None]]).astype(np.float32)

    def score(self, users_df: pd.DataFrame, products_df: pd.DataFrame) -> np.ndarray:
        """(n, m) float32 scores of every user row for every product row."""
        return self.user_vectors(users_df) @ self.item_vectors(products_df).T

    # --- the family protocol (recsys.families.base) -----------------------------------
    def scorer(self, products: pd.DataFrame, history=None) -> VectorScorer:
        """Scores of blocks of users against ``products`` (their item vectors computed once)."""
        return VectorScorer(products, self.item_vectors(products), self.user_vectors)

    def write_served(self, users: pd.DataFrame, products: pd.DataFrame, folder: Path) -> tuple[str, ...]:
        """The published vector files of every user and product (cold start: from attributes)."""
        return write_model_embeddings(self, users, products, folder)

    # --- persistence (recsys.families.hybrid.files: no pickle) ----------------------------
    def save(self, store: ArtifactStore, model_id: str) -> dict[str, str]:
        """``models/<model_id>/model.npz`` and ``model.json``; returns their ``{name: sha256}``."""
        return save_model(self, store, model_id)

    @classmethod
    def load(cls, store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None) -> HybridModel:
        """The model's files, checked against ``checksums`` (the registry's record) before they are read."""
        return load_model(store, model_id, checksums)

"""Model families: what the nightly run can train, the registry records and serving loads.

A family is a name and two functions (``FAMILIES``, keyed by name):

- ``fit(frame, users, products, config, *, seed, threads, info) -> model``: trains on an aggregated
  training frame (``recsys.model.train.load_training_frame``); ``config`` is the JSON configuration the
  registry records (``recsys.evaluation.selection.CandidateSpec.config``), so a row says exactly
  what its model was trained with;
- ``load(store, model_id, checksums) -> model``: the saved model, its files checked against the
  registry's checksums before they are parsed (``ArtifactIntegrityError`` otherwise).

A model of any family has ``save(store, model_id) -> {file: sha256}``, ``score(users, products)``
(offline evaluation), ``info``, ``dim``, ``known_user_ids`` and its served form:

- ``served_as = "vectors"`` (hybrid, lightfm-cf, als): ``user_vectors(users, value_segment)`` and
  ``item_vectors(products)``, float32 arrays whose inner product is the score; published as the
  ``.npy`` files of ``recsys.model.embedding_files``;
- ``served_as = "neighbours"`` (item-knn): the same two methods return sparse matrices (history rows,
  neighbour columns); published as ``recsys.model.neighbour_files``.

``cold_start_users`` says whether the model scores users unseen in training (hybrid: from their
attributes); when False, publish and precompute serve the known users only.

The registry's ``model_type`` is ``HYBRID`` for the hybrid (rows written before families existed)
and the family name for the others; ``family_of`` reads either. A new family (the sequential model)
plugs in with one more ``FAMILIES`` entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from recsys.artifacts import ArtifactStore
from recsys.constants import MODEL_TYPE_HYBRID

HYBRID, LIGHTFM_CF, ALS, ITEM_KNN = "hybrid", "lightfm-cf", "als", "item-knn"


class UnknownFamilyError(ValueError):
    """A model family (or registry ``model_type``) that this version cannot train or serve."""


@dataclass(frozen=True)
class Family:
    name: str
    fit: Callable[..., Any]
    load: Callable[[ArtifactStore, str, Mapping[str, str] | None], Any]

    @property
    def model_type(self) -> str:
        return MODEL_TYPE_HYBRID if self.name == HYBRID else self.name


def _train_params(config: Mapping, seed: int, threads: int, features: bool):
    from recsys.model.train import TrainParams

    params = dict(config.get("params") or {})
    params.update(seed=seed, threads=threads)
    if features:
        params.update(user_features=tuple(config.get("user_features", TrainParams().user_features)),
                      item_features=tuple(config.get("item_features", TrainParams().item_features)))
    else:
        params.update(user_features=(), item_features=())
    params.pop("window_days", None)  # the training frame is the window
    return TrainParams(**params)


def _fit_lightfm(features: bool):
    def fit(frame, users, products, config, *, seed, threads, info=None):
        from recsys.model.train import fit_hybrid

        return fit_hybrid(frame, users, products, _train_params(config, seed, threads, features), info)
    return fit


def _fit_als(frame, users, products, config, *, seed, threads, info=None):
    from recsys.model.als import ALSModel

    return ALSModel.fit(frame, seed=seed, threads=threads, info=info, **dict(config))


def _fit_knn(frame, users, products, config, *, seed, threads, info=None):
    from recsys.model.item_knn import ItemKNNModel

    return ItemKNNModel.fit(frame, int(config.get("neighbours", 100)), info=info)


def _load_hybrid(store, model_id, checksums):
    from recsys.model.hybrid import HybridModel

    return HybridModel.load(store, model_id, checksums)


def _load_als(store, model_id, checksums):
    from recsys.model.als import ALSModel

    return ALSModel.load(store, model_id, checksums)


def _load_knn(store, model_id, checksums):
    from recsys.model.item_knn import ItemKNNModel

    return ItemKNNModel.load(store, model_id, checksums)


FAMILIES: dict[str, Family] = {
    HYBRID: Family(HYBRID, _fit_lightfm(True), _load_hybrid),
    LIGHTFM_CF: Family(LIGHTFM_CF, _fit_lightfm(False), _load_hybrid),  # a HybridModel without attributes
    ALS: Family(ALS, _fit_als, _load_als),
    ITEM_KNN: Family(ITEM_KNN, _fit_knn, _load_knn),
}


def family_of(model_type: str) -> Family:
    """The family of a registry ``model_type`` (``HYBRID`` or a family name, any case)."""
    family = FAMILIES.get(str(model_type).lower())
    if family is None:
        raise UnknownFamilyError(f"unknown model family {model_type!r}; known: {sorted(FAMILIES)}")
    return family


def fit_family(name: str, frame: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame, config: Mapping,
               *, seed: int, threads: int, info: dict | None = None):
    """The model of family ``name`` trained on ``frame`` with ``config`` (the recorded configuration)."""
    return family_of(name).fit(frame, users, products, config, seed=seed, threads=threads, info=info)


def load_model(store: ArtifactStore, row) -> Any:
    """The model of a registry row (any family), its files verified against the row's checksums."""
    return family_of(row.model_type).load(store, row.model_id, row.artifacts)


def servable_users(model, users: pd.DataFrame, column: str) -> pd.DataFrame:
    """The rows of ``users`` the model can score: all of them with cold start, else the known users."""
    if getattr(model, "cold_start_users", True):
        return users
    return users[users[column].isin(model.known_user_ids)]


__all__ = ["ALS", "FAMILIES", "Family", "HYBRID", "ITEM_KNN", "LIGHTFM_CF", "UnknownFamilyError", "family_of",
           "fit_family", "load_model", "servable_users"]

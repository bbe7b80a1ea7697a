"""Model families: what the nightly run can train, the registry records and serving loads.

A family (``FAMILIES``, keyed by name) says how its models are trained, loaded and published:

- ``fit(frame, users, products, config, *, seed, threads, info) -> model``: trains on an aggregated
  training frame (``recsys.pipeline.train.load_training_frame``); ``config`` is the JSON configuration the
  registry records (``recsys.evaluation.selection.CandidateSpec.config``), so a row says exactly
  what its model was trained with. ``None`` for a family that reads its own training data: then
  ``train(engine, store, day, params, config, record) -> dict`` trains, saves and registers the model
  (the sequential model reads each user's ordered events, not the aggregated frame);
  ``recsys.pipeline.train.train_model`` calls one or the other;
- ``load(store, model_id, checksums, window) -> model``: the saved model, its files checked against the
  registry's checksums before they are parsed (``ArtifactIntegrityError`` otherwise). ``window``
  (``ScoringWindow``: engine, end, look-back) is where a model that scores from each user's recent
  events reads them; the sequential family needs it, the others ignore it;
- ``publish``: ``None`` when serving reads files that ``recsys.pipeline.publish`` writes from the model
  (vectors or neighbour rows, below), else the family's own ``publish(engine, store, row, keep,
  rollback_depth)`` (the sequential model is served from the files training wrote);
- ``saved(store, model_id)``: the model's files are in the store (a re-run reuses it only then);
  ``published(store, model_id)``: it is published (an A/B test may serve it).

A frame family's model has ``save(store, model_id) -> {file: sha256}``, ``score(users, products)``
(offline evaluation), ``info``, ``dim``, ``known_user_ids`` and its served form:

- ``served_as = "vectors"`` (hybrid, lightfm-cf, als): ``user_vectors(users, value_segment)`` and
  ``item_vectors(products)``, float32 arrays whose inner product is the score; published as the
  ``.npy`` files of ``recsys.families.vectors.files``;
- ``served_as = "neighbours"`` (item-knn): the same two methods return sparse matrices (history rows,
  neighbour columns); published as ``recsys.families.item_knn.files``.

A sequential model loads as ``recsys.families.sequential.served.SequentialServed``: ``user_vectors`` (each
user's encoded sequence before the window's end), ``item_vectors``, ``score`` and ``dim``, which is
what evaluate and precompute use. ``cold_start_users`` says whether the model scores users unseen in
training (hybrid: from their attributes); when False, publish and precompute serve the known users only.

The registry's ``model_type`` is ``HYBRID`` for the hybrid (rows written before families existed),
``SEQUENTIAL`` for the sequential model (rows of the nightly sequential branch) and the family name
for the others; ``family_of`` reads any of them. Nothing here imports torch: the sequential family
trains through ``recsys.families.sequential.store`` (torch imported there, at training) and loads through
onnxruntime.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from recsys.artifacts import ArtifactStore
from recsys.constants import MODEL_TYPE_HYBRID, MODEL_TYPE_SEQUENTIAL

if TYPE_CHECKING:
    from sqlalchemy import Engine

HYBRID, LIGHTFM_CF, ALS, ITEM_KNN, SEQUENTIAL = "hybrid", "lightfm-cf", "als", "item-knn", "sequential"
MODEL_TYPES = {HYBRID: MODEL_TYPE_HYBRID, SEQUENTIAL: MODEL_TYPE_SEQUENTIAL}  # else the family name


class UnknownFamilyError(ValueError):
    """A model family (or registry ``model_type``) that this version cannot train or serve."""


@dataclass(frozen=True)
class ScoringWindow:
    """Where a model that scores from each user's recent events reads them: ``user_events`` of
    ``[until_ms - lookback_days, until_ms)`` (evaluate: before the hold-out day; precompute: up to the
    end of the day)."""

    engine: Engine
    until_ms: int
    lookback_days: int


def _model_files_saved(store: ArtifactStore, model_id: str) -> bool:
    from recsys.families.files import model_saved

    return model_saved(store, model_id)


def _served_files_published(store: ArtifactStore, model_id: str) -> bool:
    from recsys.families.vectors.files import published_format

    return published_format(store, model_id) is not None


@dataclass(frozen=True)
class Family:
    name: str
    fit: Callable[..., Any] | None
    load: Callable[[ArtifactStore, str, Mapping[str, str] | None, ScoringWindow | None], Any]
    train: Callable[..., dict] | None = None
    publish: Callable[..., dict] | None = None
    saved: Callable[[ArtifactStore, str], bool] = _model_files_saved
    published: Callable[[ArtifactStore, str], bool] = _served_files_published

    @property
    def model_type(self) -> str:
        return MODEL_TYPES.get(self.name, self.name)


def _train_params(config: Mapping, seed: int, threads: int, features: bool):
    from recsys.families.hybrid.fit import TrainParams

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
        from recsys.families.hybrid.fit import fit_hybrid

        return fit_hybrid(frame, users, products, _train_params(config, seed, threads, features), info)
    return fit


def _fit_als(frame, users, products, config, *, seed, threads, info=None):
    from recsys.families.als.model import ALSModel

    return ALSModel.fit(frame, seed=seed, threads=threads, info=info, **dict(config))


def _fit_knn(frame, users, products, config, *, seed, threads, info=None):
    from recsys.families.item_knn.model import ItemKNNModel

    return ItemKNNModel.fit(frame, int(config.get("neighbours", 100)), info=info)


def _load_hybrid(store, model_id, checksums, window=None):
    from recsys.families.hybrid.model import HybridModel

    return HybridModel.load(store, model_id, checksums)


def _load_als(store, model_id, checksums, window=None):
    from recsys.families.als.model import ALSModel

    return ALSModel.load(store, model_id, checksums)


def _load_knn(store, model_id, checksums, window=None):
    from recsys.families.item_knn.model import ItemKNNModel

    return ItemKNNModel.load(store, model_id, checksums)


def _train_sequential(engine, store, day, params, config, record):
    from recsys.families.sequential.store import train_family

    return train_family(engine, store, day, params, config, record)


def _load_sequential(store, model_id, checksums, window=None):
    from recsys.families.sequential.served import load_served

    return load_served(store, model_id, checksums, window)


def _publish_sequential(engine, store, row, keep, rollback_depth):
    from recsys.families.sequential.served import publish_sequential

    return publish_sequential(engine, store, row, keep, rollback_depth)


def _sequential_saved(store, model_id):
    from recsys.families.sequential.store import sequential_saved

    return sequential_saved(store, model_id)


def _sequential_published(store, model_id):
    from recsys.families.sequential.served import sequential_published

    return sequential_published(store, model_id)


FAMILIES: dict[str, Family] = {
    HYBRID: Family(HYBRID, _fit_lightfm(True), _load_hybrid),
    LIGHTFM_CF: Family(LIGHTFM_CF, _fit_lightfm(False), _load_hybrid),  # a HybridModel without attributes
    ALS: Family(ALS, _fit_als, _load_als),
    ITEM_KNN: Family(ITEM_KNN, _fit_knn, _load_knn),
    SEQUENTIAL: Family(SEQUENTIAL, None, _load_sequential, train=_train_sequential, publish=_publish_sequential,
                       saved=_sequential_saved, published=_sequential_published),
}


def family_of(model_type: str) -> Family:
    """The family of a registry ``model_type`` (``HYBRID``, ``SEQUENTIAL`` or a family name, any case)."""
    family = FAMILIES.get(str(model_type).lower())
    if family is None:
        raise UnknownFamilyError(f"unknown model family {model_type!r}; known: {sorted(FAMILIES)}")
    return family


def fit_family(name: str, frame: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame, config: Mapping,
               *, seed: int, threads: int, info: dict | None = None):
    """The model of family ``name`` trained on ``frame`` with ``config`` (the recorded configuration)."""
    family = family_of(name)
    if family.fit is None:
        raise ValueError(f"model family {name!r} reads its own training data, not the aggregated frame: "
                                 "train it with recsys.pipeline.train.train_model")
    return family.fit(frame, users, products, config, seed=seed, threads=threads, info=info)


def load_model(store: ArtifactStore, row, window: ScoringWindow | None = None) -> Any:
    """The model of a registry row (any family), its files verified against the row's checksums;
    ``window``: where a model scoring from users' recent events reads them (required for those)."""
    return family_of(row.model_type).load(store, row.model_id, row.artifacts, window)


def servable_users(model, users: pd.DataFrame, column: str) -> pd.DataFrame:
    """The rows of ``users`` the model can score: all of them with cold start, else the known users."""
    if getattr(model, "cold_start_users", True):
        return users
    return users[users[column].isin(model.known_user_ids)]


__all__ = ["ALS", "FAMILIES", "Family", "HYBRID", "ITEM_KNN", "LIGHTFM_CF", "SEQUENTIAL", "ScoringWindow",
           "UnknownFamilyError", "family_of", "fit_family", "load_model", "servable_users"]

"""The hybrid LightFM family: ids plus user and product attributes, so new users and products are scored from
their attributes (cold start). Named configurations for selection: ``hybrid-default`` (the run's training
parameters: ``RECSYS_*`` settings and the trigger form), ``hybrid-warp`` (the same with the WARP loss) and
``hybrid-nofeatures`` (ids only).

A configuration is ``{"params": {LightFM hyper-parameters, seed}, "user_features": [...], "item_features":
[...]}`` plus the re-ranking knobs it was selected with (ignored by training: ``ConfigBase.rerank``). Its
models are ``model.npz`` + ``model.json`` (``files``: no pickle), served as dense vectors
(``recsys.families.vectors``). Like every family package, this one is cheap to import (the registry is read
when a DAG file is parsed): the model code is imported when it is used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from recsys.families.base import Capabilities, TrainingData
from recsys.families.vectors.names import EMBEDDING_FILES, LEGACY_FILE

MODEL_TYPE_HYBRID = "HYBRID"  # the registry's model_type of its rows (written before families existed)
RUN_OPTIONS = ("window_days", "threads")  # TrainParams fields that are not part of a configuration
FEATURE_FIELDS = ("user_features", "item_features")
LIGHTFM_SPACE = ("no_components", "learning_rate", "epochs", "item_alpha")


def config_of(params, rerank: Mapping | None = None) -> dict:
    """The recorded configuration of ``TrainParams`` (without the run options ``window_days`` and ``threads``)."""
    body = {k: v for k, v in dataclasses.asdict(params).items() if k not in (*RUN_OPTIONS, *FEATURE_FIELDS)}
    return {"params": body, "user_features": list(params.user_features), "item_features": list(params.item_features),
            **dict(rerank or {})}


def params_of(config: Mapping, *, seed: int, threads: int, features: bool = True):
    """The ``TrainParams`` a configuration trains with (``seed``/``threads`` of the run)."""
    from recsys.families.hybrid.params import TrainParams

    params = dict(config.get("params") or {})
    params.update(seed=seed, threads=threads)
    if features:
        params.update(user_features=tuple(config.get("user_features", TrainParams().user_features)),
                      item_features=tuple(config.get("item_features", TrainParams().item_features)))
    else:
        params.update(user_features=(), item_features=())
    params.pop("window_days", None)  # the training frame is the window
    return TrainParams(**params)


def suggest_lightfm(trial) -> dict:
    """LightFM's searched hyper-parameters (``LIGHTFM_SPACE``) as an Optuna trial suggests them."""
    return {"no_components": trial.suggest_int("no_components", 16, 128, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.15, log=True),
            "epochs": trial.suggest_int("epochs", 5, 60, log=True),
            "item_alpha": trial.suggest_float("item_alpha", 1e-7, 1e-3, log=True)}


class LightFMFamily:
    """LightFM: with attributes (``features``, the hybrid) or on ids only (``recsys.families.lightfm_cf``)."""

    served_files = EMBEDDING_FILES
    legacy_files = (LEGACY_FILE,)  # an earlier version's single archive of the vectors
    ranks = {"hybrid-default": 0.0, "hybrid-warp": 4.0, "hybrid-nofeatures": 5.0}  # candidates' order in selection

    def __init__(self, name: str, model_type: str, label: str, features: bool):
        self.name, self.model_type, self.label, self.features = name, model_type, label, features
        self.capabilities = Capabilities(cold_start_users=True)

    def unavailable(self) -> str | None:
        return None

    def options_from_settings(self, settings) -> dict:
        return {}

    def default_config(self, base) -> dict:
        return config_of(base.params, base.rerank)

    def configurations(self, base) -> dict[str, dict]:
        params = base.params
        warp = dataclasses.replace(params, loss="warp")
        ids_only = dataclasses.replace(params, user_features=(), item_features=())
        return {"hybrid-default": config_of(params, base.rerank), "hybrid-warp": config_of(warp, base.rerank),
                "hybrid-nofeatures": config_of(ids_only, base.rerank)}

    def fit(self, data: TrainingData, config: Mapping, *, seed: int, threads: int):
        from recsys.families.hybrid.fit import fit_hybrid

        params = params_of(config, seed=seed, threads=threads, features=self.features)
        return fit_hybrid(data.frame, data.users, data.products, params)

    def load(self, store, model_id: str, checksums):
        from recsys.families.hybrid.model import HybridModel

        return HybridModel.load(store, model_id, checksums)

    def own_files(self, store, model_id: str) -> tuple[str, ...]:
        from recsys.families.files import MODEL_FILES

        return MODEL_FILES

    def saved(self, store, model_id: str) -> bool:
        from recsys.families.files import model_saved

        return model_saved(store, model_id)

    def check_served(self, model_id: str, folder: Path) -> None:
        from recsys.families.vectors.scorer import check_vectors

        check_vectors(model_id, folder)

    def open_served(self, model_id: str, folder: Path, products=None):
        from recsys.families.vectors.scorer import open_vectors

        return open_vectors(model_id, folder)

    def open_legacy(self, store, model_id: str, checksums):
        """An earlier version's ``embeddings.npz``, verified and read whole."""
        from recsys.families.vectors.files import read_legacy
        from recsys.families.vectors.served import ModelEmbeddings

        return ModelEmbeddings.from_arrays(model_id, **read_legacy(store, model_id, checksums))

    def search_space(self, trial) -> dict | None:
        return suggest_lightfm(trial)

    def with_values(self, config: Mapping, values: Mapping) -> dict:
        picked = {k: v for k, v in values.get("params", values).items() if k in LIGHTFM_SPACE}
        return {**config, "params": {**(config.get("params") or {}), **picked}}

    def values_of(self, config: Mapping) -> dict:
        params = config.get("params") or {}
        return {k: params[k] for k in LIGHTFM_SPACE}


FAMILY = LightFMFamily("hybrid", MODEL_TYPE_HYBRID, "hybrid LightFM (ids, user and product attributes)", features=True)

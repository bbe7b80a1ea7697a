"""Implicit ALS (the ``implicit`` package, ``model.ALSModel``): a factor model of the users and products seen
in training (no cold start), served as dense vectors like the hybrid. Configuration: ``factors``,
``regularization``, ``iterations``, ``alpha`` (confidence ``alpha * (1 + log(weight))``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from recsys.families.base import Capabilities, TrainingData
from recsys.families.vectors.names import EMBEDDING_FILES, LEGACY_FILE

NAME = "als"

DEFAULT_CONFIG = {"factors": 64, "regularization": 0.05, "iterations": 15, "alpha": 10.0}


class ALSFamily:
    name = model_type = NAME
    label = "implicit ALS (users and products seen in training)"
    capabilities = Capabilities(cold_start_users=False)
    served_files = EMBEDDING_FILES
    legacy_files = (LEGACY_FILE,)  # an earlier version's single archive of the vectors
    ranks = {NAME: 2.0}  # its candidate's place in selection's order

    def unavailable(self) -> str | None:
        try:
            import implicit.als  # noqa: F401
        except ImportError as exc:
            return f"the 'implicit' package is not installed ({exc}); pip install -r requirements.txt"
        return None

    def options_from_settings(self, settings) -> dict:
        return {}

    def default_config(self, base) -> dict:
        return {**DEFAULT_CONFIG, **(base.options.get(self.name) or {})}

    def configurations(self, base) -> dict[str, dict]:
        return {self.name: self.default_config(base)}

    def fit(self, data: TrainingData, config: Mapping, *, seed: int, threads: int):
        from recsys.families.als.model import ALSModel

        return ALSModel.fit(data.frame, seed=seed, threads=threads, **dict(config))

    def load(self, store, model_id: str, checksums):
        from recsys.families.als.model import ALSModel

        return ALSModel.load(store, model_id, checksums)

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
        return {"factors": trial.suggest_int("factors", 16, 128, log=True),
                "regularization": trial.suggest_float("regularization", 1e-3, 1.0, log=True),
                "iterations": trial.suggest_int("iterations", 5, 30),
                "alpha": trial.suggest_float("alpha", 1.0, 40.0, log=True)}

    def with_values(self, config: Mapping, values: Mapping) -> dict:
        return dict(values)

    def values_of(self, config: Mapping) -> dict:
        return dict(config)


FAMILY = ALSFamily()

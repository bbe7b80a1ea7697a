"""EASE, a closed-form item-item model (``model.EASEModel``); often the strongest simple baseline on public
logs. No cold start, no dense vectors; served in item-kNN's published form (history and a sparse weight
matrix). Configuration: ``{"lambda": L2 penalty, "neighbours": weights kept per product}``. Its size guard
(``capabilities.max_items``, ``model.MAX_ITEMS`` = 15,000 products) keeps it out of selection where the
item-item matrix does not fit in memory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from recsys.families.base import Capabilities, TrainingData
from recsys.families.item_knn.names import NEIGHBOUR_FILES

NAME = "ease"
MAX_ITEMS = 15_000  # fitting holds about three items x items float64 matrices: 5.4 GB at 15,000 products

DEFAULT_CONFIG = {"lambda": 500.0, "neighbours": 200}


class EASEFamily:
    name = model_type = NAME
    label = "EASE (closed-form item-item, Steck 2019)"
    capabilities = Capabilities(cold_start_users=False, dense_vectors=False, max_items=MAX_ITEMS)
    served_files = NEIGHBOUR_FILES
    legacy_files = ()
    ranks = {NAME: 6.0}  # its candidate's place in selection's order

    def unavailable(self) -> str | None:
        return None

    def options_from_settings(self, settings) -> dict:
        return {}

    def default_config(self, base) -> dict:
        return {**DEFAULT_CONFIG, **(base.options.get(self.name) or {})}

    def configurations(self, base) -> dict[str, dict]:
        return {self.name: self.default_config(base)}

    def fit(self, data: TrainingData, config: Mapping, *, seed: int, threads: int):
        from recsys.families.ease.model import EASEModel

        return EASEModel.fit(data.frame, float(config["lambda"]), int(config["neighbours"]))

    def load(self, store, model_id: str, checksums):
        from recsys.families.ease.model import EASEModel

        return EASEModel.load(store, model_id, checksums)

    def own_files(self, store, model_id: str) -> tuple[str, ...]:
        from recsys.families.files import MODEL_FILES

        return MODEL_FILES

    def saved(self, store, model_id: str) -> bool:
        from recsys.families.files import model_saved

        return model_saved(store, model_id)

    def check_served(self, model_id: str, folder: Path) -> None:
        from recsys.families.item_knn.files import open_neighbour_folder

        open_neighbour_folder(folder)  # checks dtypes, shapes and ids; the maps are dropped at once

    def open_served(self, model_id: str, folder: Path, products=None):
        from recsys.families.item_knn.served import NeighbourScores

        return NeighbourScores.from_folder(model_id, folder)

    def search_space(self, trial) -> dict | None:
        return {"lambda": trial.suggest_float("lambda", 10.0, 5000.0, log=True),
                "neighbours": trial.suggest_int("neighbours", 50, 500, log=True)}

    def with_values(self, config: Mapping, values: Mapping) -> dict:
        return {**config, **values}

    def values_of(self, config: Mapping) -> dict:
        return {"lambda": config["lambda"], "neighbours": config["neighbours"]}


FAMILY = EASEFamily()

"""Item-kNN: co-occurrence cosine similarity kept as a sparse top-k neighbour matrix, and each trained user's
history (``model.ItemKNNModel``). A user's score for a product is the sum of its similarities to the user's
products (``history[u] @ S``). No cold start and no dense vectors: published as the neighbour files
(``files``), scored on the fly by the API from them (``served``). Configuration: ``{"neighbours": k}``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from recsys.families.base import Capabilities, TrainingData
from recsys.families.item_knn.names import NEIGHBOUR_FILES

NAME = "item-knn"

DEFAULT_NEIGHBOURS = 100


class ItemKNNFamily:
    name = model_type = NAME
    label = "item-kNN (co-occurrence cosine, users seen in training)"
    capabilities = Capabilities(cold_start_users=False, dense_vectors=False)
    served_files = NEIGHBOUR_FILES
    legacy_files = ()
    ranks = {NAME: 1.0}  # its candidate's place in selection's order (cheap: early)

    def unavailable(self) -> str | None:
        return None

    def options_from_settings(self, settings) -> dict:
        return {}

    def default_config(self, base) -> dict:
        return {"neighbours": int((base.options.get(self.name) or {}).get("neighbours", DEFAULT_NEIGHBOURS))}

    def configurations(self, base) -> dict[str, dict]:
        return {self.name: self.default_config(base)}

    def fit(self, data: TrainingData, config: Mapping, *, seed: int, threads: int):
        from recsys.families.item_knn.model import ItemKNNModel

        return ItemKNNModel.fit(data.frame, int(config.get("neighbours", DEFAULT_NEIGHBOURS)))

    def load(self, store, model_id: str, checksums):
        from recsys.families.item_knn.model import ItemKNNModel

        return ItemKNNModel.load(store, model_id, checksums)

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
        return {"neighbours": trial.suggest_int("neighbours", 10, 400, log=True)}

    def with_values(self, config: Mapping, values: Mapping) -> dict:
        return {"neighbours": int(values["neighbours"])}

    def values_of(self, config: Mapping) -> dict:
        return {"neighbours": config["neighbours"]}


FAMILY = ItemKNNFamily()

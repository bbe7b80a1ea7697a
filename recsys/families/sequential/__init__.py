"""The sequential session model (the design's "Model A"): the next product from a user's recent sequence.

A SASRec-style causal transformer (or a GRU, ``SequentialConfig.kind``) reads the last ``max_len`` products
of a user, each embedded as id + category + price band, and scores every product by the dot product of its
final state with the same item embeddings (tied input and output), trained with a full softmax /
cross-entropy loss. It is trained with torch (``requirements-train.txt``) and served from its ONNX export
with onnxruntime and numpy only, in real time from the session's sequence.

Modules, in the order of the data flow:

- ``config``: ``SequentialConfig`` (every knob, with its default) and the artifact file names.
- ``data``: events -> per-user product sequences, the item vocabulary with attributes, training windows and
  the leave-last-out validation split (numpy + pandas only).
- ``model``, ``train``: the torch modules and seeded training with early stopping and a time budget.
- ``export``: the ONNX encoder and the item matrix, id map and config as .npy / JSON.
- ``scoring``: ``load_runtime`` and ``score_next``: numpy + onnxruntime, never torch.
- ``recent``: a user's recent sequence as the API keeps it, and its key.
- ``store``: the files in the artifact store; ``trained``: the model and its batch scorer; ``served``: the
  API's real-time form.

Its configuration is a ``SequentialConfig`` as a dict; ``options_from_settings`` gives the nightly run's
time budget (``RECSYS_SEQUENTIAL_TIME_BUDGET_SECONDS``), threads and seed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from recsys.constants import COL_ITEM, COL_USER
from recsys.data.errors import NoTrainingDataError
from recsys.families.base import Capabilities, TrainingData
from recsys.families.sequential.config import SEQUENTIAL_FILES, SequentialConfig

NAME = "sequential"
MODEL_TYPE_SEQUENTIAL = "SEQUENTIAL"  # the registry's model_type of its rows


class NoSequencesError(NoTrainingDataError):
    """The training window has no user with enough products: nothing to train the sequential model on."""


def sequential_config(seed: int = 42, threads: int = 0, **overrides) -> SequentialConfig:
    """The ``SequentialConfig`` a fit uses: its defaults with ``seed``, ``threads`` (0: the default) and
    ``overrides`` (any other field)."""
    return dataclasses.replace(SequentialConfig(), **{"seed": seed, **({"threads": threads} if threads else {}),
                                                      **overrides})


class SequentialFamily:
    name = NAME
    model_type = MODEL_TYPE_SEQUENTIAL
    label = "sequential session model (next product from the recent sequence)"
    capabilities = Capabilities(cold_start_users=True, real_time=True, needs_torch=True)
    served_files = SEQUENTIAL_FILES
    legacy_files = ()
    ranks = {NAME: 9.0}  # last in selection: the slowest, the time box skips it first

    def unavailable(self) -> str | None:
        from recsys.families.sequential.store import training_unavailable

        return training_unavailable()

    def options_from_settings(self, settings) -> dict:
        return {"time_budget_s": float(settings.sequential_time_budget_seconds)}

    def default_config(self, base) -> dict:
        params = base.params  # threads 0: every core, as the run's training
        return sequential_config(**{"seed": params.seed, "threads": params.threads or os.cpu_count() or 1,
                                    **(base.options.get(self.name) or {})}).as_dict()

    def configurations(self, base) -> dict[str, dict]:
        return {self.name: self.default_config(base)}

    def time_budget_seconds(self, config: Mapping) -> float:
        """Seconds the configuration itself allows its training."""
        return float(SequentialConfig(**config).time_budget_s)

    def fit(self, data: TrainingData, config: Mapping, *, seed: int, threads: int):
        from recsys.families.base import ModelUnavailableError
        from recsys.families.sequential.trained import SequentialModel

        why = self.unavailable()
        if why:
            raise ModelUnavailableError(why)
        cfg = SequentialConfig(**{**dict(config), "seed": config.get("seed", seed)})
        events = data.signal_events()
        longest = int(events.groupby(COL_USER)[COL_ITEM].nunique().max()) if len(events) else 0
        if longest < cfg.min_sequence:
            raise NoSequencesError(f"no user has {cfg.min_sequence} products in the training window: nothing to "
                                   "train the sequential model on")
        return SequentialModel.fit(events, data.products, cfg)

    def load(self, store, model_id: str, checksums):
        from recsys.families.sequential.trained import SequentialModel

        return SequentialModel.load(store, model_id, checksums)

    def own_files(self, store, model_id: str) -> tuple[str, ...]:
        return SEQUENTIAL_FILES

    def saved(self, store, model_id: str) -> bool:
        from recsys.families.sequential.store import sequential_saved

        return sequential_saved(store, model_id)

    def check_served(self, model_id: str, folder: Path) -> None:
        from recsys.families.sequential.scoring import load_runtime

        load_runtime(folder)  # the ONNX encoder opens and the arrays agree

    def open_served(self, model_id: str, folder: Path, products=None):
        from recsys.families.sequential.served import SequentialServedModel

        return SequentialServedModel.open(model_id, folder, products)

    def search_space(self, trial) -> None:
        return None  # bounded by its time budget; not searched

    def with_values(self, config: Mapping, values: Mapping) -> dict:
        return dict(config)

    def values_of(self, config: Mapping) -> dict:
        return {}


FAMILY = SequentialFamily()

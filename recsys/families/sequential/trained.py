"""A sequential model as the pipeline holds it: the ONNX export's files (bytes) and their runtime.

``SequentialModel.fit`` trains (torch, ``train.fit_sequential``), exports to ONNX and keeps the exported
files in memory, so ``save`` writes exactly what was scored; ``load`` reads a registered model's verified
files. ``scorer(products, history)`` scores blocks of users from each user's recent sequence, read from
``history`` (the database before a day's end, or a split's training events): the distinct products of
their signal events, newest first, at most ``recent.MAX_SEQUENCE``, as the API keeps the session's
sequence (``recent.newest_first``), so precompute, evaluation and real-time scoring read the same input.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts import ArtifactStore, model_key
from recsys.constants import COL_ITEM, COL_USER
from recsys.data.frames import require_columns
from recsys.families.base import History
from recsys.families.sequential.config import SequentialConfig
from recsys.data.sequences import newest_first, sequence_key
from recsys.families.sequential.store import SEQUENTIAL_FILES, load_sequential
from recsys.families.vectors.scorer import VectorScorer


class SequentialScorer(VectorScorer):
    """Blocks of users scored from their recent sequences; the users of the last block keep their
    sequence (``list_fields``: the key a cached list records; ``follows``: the newest product)."""

    def __init__(self, runtime, products: pd.DataFrame, history: History):
        from recsys.families.sequential.scoring import add_products

        require_columns(products, (COL_ITEM, "category", "price"), "products")
        new = products[~products[COL_ITEM].isin(list(runtime.rows))].drop_duplicates(COL_ITEM)
        if len(new):  # a product the model never saw gets its attributes' vector
            runtime = add_products(runtime, new[COL_ITEM].to_numpy(), new["category"].tolist(),
                                   [None if pd.isna(p) else float(p) for p in new["price"]])
        self.runtime, self.history = runtime, history
        self.recent: dict[int, list[int]] = {}  # newest first, of the users of the last block
        rows = [runtime.rows[int(p)] for p in products[COL_ITEM]]
        super().__init__(products, np.asarray(runtime.item_vectors[rows], dtype=np.float32), self._vectors)

    @property
    def dim(self) -> int:
        return int(self.runtime.item_vectors.shape[1])

    def sequences(self, user_ids) -> dict[int, list[int]]:
        """Each user's recent products (newest first, known to the model) in ``history``."""
        events = self.history.events([int(u) for u in user_ids])
        out = {}
        for uid, items in events.groupby(COL_USER, sort=False)[COL_ITEM]:
            seq = [p for p in newest_first(items.tolist()) if p in self.runtime.rows]
            if seq:
                out[int(uid)] = seq
        return out

    def _vectors(self, users: pd.DataFrame, segments=None) -> np.ndarray:
        from recsys.families.sequential.scoring import encode

        require_columns(users, (COL_USER,), "users")
        ids = users[COL_USER].astype(int).tolist()
        self.recent = self.sequences(ids)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)  # no sequence: no signal (popularity decides)
        known = [i for i, uid in enumerate(ids) if uid in self.recent]
        if known:
            out[known] = encode(self.runtime, [self.recent[ids[i]][::-1] for i in known])
        return out

    def list_fields(self, user_id: int) -> dict:
        return {"seq": sequence_key(self.recent.get(int(user_id), ()))}

    def follows(self, user_id: int) -> int | None:
        seq = self.recent.get(int(user_id))
        return int(seq[0]) if seq else None


class SequentialModel:
    """The exported files (``SEQUENTIAL_FILES``: bytes when just trained, None when loaded) and their
    runtime (onnxruntime + numpy)."""

    served_as = "sequence"  # informational (metadata.json)

    def __init__(self, runtime, files: Mapping[str, bytes] | None = None, info: dict | None = None,
                 summary: dict | None = None):
        self.runtime, self.files = runtime, dict(files) if files is not None else None
        self.info = dict(info or {})
        self.training_summary = summary  # epochs, early stopping (evaluate's output)

    @property
    def known_user_ids(self) -> None:
        return None  # any user with a recent sequence

    @property
    def dim(self) -> int:
        return int(self.runtime.item_vectors.shape[1])

    @classmethod
    def fit(cls, events: pd.DataFrame, products: pd.DataFrame, config: SequentialConfig) -> SequentialModel:
        from recsys.families.sequential.export import export_model
        from recsys.families.sequential.scoring import load_runtime
        from recsys.families.sequential.train import fit_sequential

        fitted = fit_sequential(events, products, config)
        with tempfile.TemporaryDirectory(prefix="recsys-sequential-") as tmp:
            folder = export_model(fitted, Path(tmp) / "model")
            files = {name: (folder / name).read_bytes() for name in SEQUENTIAL_FILES}
            runtime = load_runtime(folder, threads=config.threads, mmap=False)
        return cls(runtime, files, summary=fitted.summary())

    @classmethod
    def load(cls, store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None) -> SequentialModel:
        return cls(load_sequential(store, model_id, checksums))

    def save(self, store: ArtifactStore, model_id: str) -> dict[str, str]:
        """Upload the files (``config.json`` last); returns their ``{name: sha256}`` for the registry."""
        if self.files is None:
            raise ValueError("a loaded sequential model is already in the store: nothing to save")
        for name in SEQUENTIAL_FILES:
            store.put_bytes(model_key(model_id, name), self.files[name])
        return {name: hashlib.sha256(self.files[name]).hexdigest() for name in SEQUENTIAL_FILES}

    def scorer(self, products: pd.DataFrame, history: History | None = None) -> SequentialScorer:
        if history is None:
            raise ValueError("the sequential model scores from each user's recent events: give it a history")
        return SequentialScorer(self.runtime, products, history)

    def write_served(self, users: pd.DataFrame, products: pd.DataFrame, folder: Path) -> tuple[str, ...]:
        """Nothing: the API serves the files training wrote."""
        return ()

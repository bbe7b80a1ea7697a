"""A registered sequential model where the pipeline expects a model: precompute, hold-out evaluation, publish.

``SequentialServed`` has the shape of ``HybridModel`` that those steps use: ``item_vectors(products)``
(catalogue order; a product added after training gets its attributes' vector), ``user_vectors(users)``
(the encoder's state after each user's recent sequence, read from ``user_events`` before ``until_ms``;
zeros for a user without one), ``score(users, products)`` and ``dim``. The sequence is the one the API
keeps (``recsys.families.sequential.recent``: distinct products newest first), so precomputed lists, the
evaluation and real-time scoring read the same input. ``just_viewed(user_id)`` names the newest product
of the last block scored, for the reason "Because you just viewed ...".

``load_served``, ``publish_sequential``, ``sequential_published``: the ``load``, ``publish`` and
``published`` of the ``sequential`` entry of ``recsys.families.registry``, so that evaluate, precompute,
publish and A/B tests reach a sequential model the way they reach any other (``families.load_model``).
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from recsys.artifacts import ArtifactStore, model_key
from recsys.constants import COL_ITEM, COL_USER, MS_PER_DAY
from recsys.data.frames import require_columns
from recsys.families.sequential.store import SEQUENTIAL_FILES, load_events, load_sequential
from recsys.families.sequential.recent import newest_first, sequence_key

log = logging.getLogger(__name__)


class SequentialServed:
    def __init__(self, model_id: str, runtime, engine: Engine, until_ms: int, lookback_days: int):
        self.model_id, self.runtime, self.engine = model_id, runtime, engine
        self.until_ms, self.start_ms = until_ms, until_ms - lookback_days * MS_PER_DAY
        self.names: dict[int, str] = {}
        self.recent: dict[int, list[int]] = {}  # newest first, of the users scored last

    @property
    def dim(self) -> int:
        return int(self.runtime.item_vectors.shape[1])

    def item_vectors(self, products: pd.DataFrame) -> np.ndarray:
        """Vectors of ``products`` in their order; products the model never saw get their attributes' vector."""
        from recsys.families.sequential.scoring import add_products

        require_columns(products, (COL_ITEM, "category", "price"), "products")
        new = products[~products[COL_ITEM].isin(list(self.runtime.rows))].drop_duplicates(COL_ITEM)
        if len(new):
            self.runtime = add_products(self.runtime, new[COL_ITEM].to_numpy(), new["category"].tolist(),
                                        [None if pd.isna(p) else float(p) for p in new["price"]])
        if "name" in products:
            self.names.update(zip(products[COL_ITEM].astype(int).tolist(), products["name"].astype(str).tolist()))
        rows = [self.runtime.rows[int(p)] for p in products[COL_ITEM]]
        return np.asarray(self.runtime.item_vectors[rows], dtype=np.float32)

    def sequences(self, user_ids) -> dict[int, list[int]]:
        """Each user's recent products (newest first, known to the model) before ``until_ms``."""
        events = load_events(self.engine, self.start_ms, self.until_ms, [int(u) for u in user_ids])
        out = {}
        for uid, items in events.groupby(COL_USER, sort=False)[COL_ITEM]:
            seq = [p for p in newest_first(items.tolist()) if p in self.runtime.rows]
            if seq:
                out[int(uid)] = seq
        return out

    def user_vectors(self, users: pd.DataFrame, segments=None) -> np.ndarray:
        from recsys.families.sequential.scoring import encode

        require_columns(users, (COL_USER,), "users")
        ids = users[COL_USER].astype(int).tolist()
        self.recent = self.sequences(ids)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)  # no sequence: no signal (popularity decides)
        known = [i for i, uid in enumerate(ids) if uid in self.recent]
        if known:
            out[known] = encode(self.runtime, [self.recent[ids[i]][::-1] for i in known])
        return out

    def score(self, users: pd.DataFrame, products: pd.DataFrame) -> np.ndarray:
        return self.user_vectors(users) @ self.item_vectors(products).T

    def just_viewed(self, user_id: int) -> str | None:
        seq = self.recent.get(int(user_id))
        return self.names.get(seq[0], str(seq[0])) if seq else None

    def sequence_key(self, user_id: int) -> str:
        return sequence_key(self.recent.get(int(user_id), ()))


def just_viewed(model, user_id: int) -> str | None:
    """The product a sequential model's list follows (None for other models): precompute's reason hook."""
    return model.just_viewed(user_id) if isinstance(model, SequentialServed) else None


def list_fields(model, user_id: int) -> dict:
    """Extra fields of a cached list: a sequential list names the sequence it was made for (``seq``)."""
    return {"seq": model.sequence_key(user_id)} if isinstance(model, SequentialServed) else {}


def load_served(store: ArtifactStore, model_id: str, checksums, window) -> SequentialServed:
    """The verified model ``model_id`` reading each user's sequence from ``window``
    (``recsys.families.registry.ScoringWindow``: before ``until_ms``, over ``lookback_days``)."""
    if window is None:
        raise ValueError(f"sequential model {model_id} scores from each user's recent events: "
                         "load it with a ScoringWindow (recsys.families.registry.load_model)")
    runtime = load_sequential(store, model_id, checksums)
    return SequentialServed(model_id, runtime, window.engine, window.until_ms, window.lookback_days)


def sequential_published(store: ArtifactStore, model_id: str) -> bool:
    """Published: ``metadata.json`` is there (its ONNX files were written by training)."""
    from recsys.pipeline.publish import METADATA_FILE

    return store.exists(model_key(model_id, METADATA_FILE))


def publish_sequential(engine: Engine, store: ArtifactStore, row, keep: int, rollback_depth: int) -> dict:
    """Publish of a sequential model: its files were written and recorded by training (the API scores the
    ONNX encoder itself, no embedding files); ``metadata.json`` is written and recorded, then retention."""
    from recsys import registry
    from recsys.pipeline.publish import METADATA_FILE, apply_retention

    key = model_key(row.model_id, METADATA_FILE)
    metadata = {"model": registry.model_to_dict(row), "params": row.params,
                "files": [model_key(row.model_id, n) for n in SEQUENTIAL_FILES],
                "sha256": {n: row.artifacts.get(n) for n in SEQUENTIAL_FILES}}
    data = json.dumps(metadata, indent=2, default=str).encode()
    store.put_bytes(key, data)
    registry.record_artifacts(engine, row.model_id, {METADATA_FILE: hashlib.sha256(data).hexdigest()})
    deleted = apply_retention(engine, store, keep, also_keep={row.model_id}, rollback_depth=rollback_depth)
    return {"model_id": row.model_id, "keys": [key], "uris": [store.uri(key)], "deleted": deleted}


__all__ = ["SequentialServed", "just_viewed", "list_fields", "load_served", "publish_sequential",
           "sequential_published"]

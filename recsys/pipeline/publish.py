"""Publish a model: its embeddings and metadata next to ``model.pkl``, then prune old versions.

Files under ``models/<model_id>/``:
- ``embeddings.npz``: ``user_ids``, ``user_vectors`` (every user of the users table),
  ``item_ids``, ``item_vectors`` (every product), vectors float32 as in ``HybridModel``.
- ``metadata.json``: the registry row (with its params and metrics) and the array shapes.

Retention keeps the folders of the newest ``keep`` registered versions, the LIVE
model, any CANDIDATE (an A/B test may serve it) and the model just published;
other registered models' folders are deleted. A folder with no registry row is
left alone: it may belong to a training run that has not registered yet.
Every file is a whole-object put (S3 retries come from botocore's standard mode).
"""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from recsys import registry
from recsys.artifacts import ArtifactStore, model_key
from recsys.constants import COL_ITEM, COL_USER, STATUS_CANDIDATE, STATUS_LIVE
from recsys.model.hybrid import MODEL_FILE, HybridModel
from recsys.model.train import load_products, load_users

log = logging.getLogger(__name__)
EMBEDDINGS_FILE = "embeddings.npz"
METADATA_FILE = "metadata.json"
MODELS_PREFIX = "models/"


def embeddings_bytes(model: HybridModel, users: pd.DataFrame, products: pd.DataFrame) -> bytes:
    """The ``embeddings.npz`` file of ``model`` for these users and products."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        user_ids=users[COL_USER].to_numpy(dtype=np.int64),
        user_vectors=model.user_vectors(users).astype(np.float32),
        item_ids=products[COL_ITEM].to_numpy(dtype=np.int64),
        item_vectors=model.item_vectors(products).astype(np.float32),
    )
    return buf.getvalue()


def read_embeddings(store: ArtifactStore, model_id: str) -> dict[str, np.ndarray]:
    """The arrays of a published ``embeddings.npz``."""
    with np.load(io.BytesIO(store.get_bytes(model_key(model_id, EMBEDDINGS_FILE)))) as npz:
        return {name: npz[name] for name in npz.files}


def model_folders(store: ArtifactStore) -> set[str]:
    """Model ids that have a folder under ``models/`` in the store."""
    return {key.split("/", 2)[1] for key in store.list(MODELS_PREFIX) if key.count("/") >= 2}


def folders_to_delete(rows: list[dict], present: set[str], keep: int, also_keep: set[str] = frozenset()) -> list[str]:
    """Pure retention rule over registry rows (any order): the folders to delete, oldest first."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, not {keep}")
    by_version = sorted(rows, key=lambda r: r["version"], reverse=True)
    kept = {r["model_id"] for r in by_version[:keep]} | set(also_keep)
    kept |= {r["model_id"] for r in rows if r["status"] in (STATUS_LIVE, STATUS_CANDIDATE)}
    return [r["model_id"] for r in reversed(by_version) if r["model_id"] in present and r["model_id"] not in kept]


def apply_retention(engine: Engine, store: ArtifactStore, keep: int, also_keep: set[str] = frozenset()) -> list[str]:
    """Delete the folders of model versions beyond ``keep``; returns the deleted model ids."""
    doomed = folders_to_delete(registry.list_models(engine), model_folders(store), keep, also_keep)
    for model_id in doomed:
        removed = store.delete_prefix(f"{MODELS_PREFIX}{model_id}/")
        log.info("retention: deleted %d file(s) of model %s", removed, model_id)
    return doomed


def publish_model(engine: Engine, store: ArtifactStore, model_id: str, keep: int = 5) -> dict:
    """Write ``embeddings.npz`` and ``metadata.json`` of ``model_id``, then apply retention."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, not {keep}")
    row = registry.get_model(engine, model_id)  # UnknownModelError for a wrong id
    model = HybridModel.load(store, model_id)
    users, products = load_users(engine), load_products(engine)
    keys = [model_key(model_id, EMBEDDINGS_FILE), model_key(model_id, METADATA_FILE)]
    store.put_bytes(keys[0], embeddings_bytes(model, users, products))
    metadata = {
        "model": registry.model_to_dict(row),
        "params": row.params,
        "dim": model.dim,
        "users": int(len(users)),
        "items": int(len(products)),
        "files": [model_key(model_id, MODEL_FILE), *keys],
    }
    store.put_bytes(keys[1], json.dumps(metadata, indent=2, default=str).encode())
    deleted = apply_retention(engine, store, keep, also_keep={model_id})
    return {"model_id": model_id, "keys": keys, "uris": [store.uri(k) for k in keys], "deleted": deleted}

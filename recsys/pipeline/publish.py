"""Publish a model: its embeddings and metadata next to ``model.npz``/``model.json``, then prune old versions.

Files under ``models/<model_id>/`` (a factor model: hybrid, lightfm-cf, als; an item-kNN model
publishes its neighbour matrix instead, ``recsys.model.neighbour_files``; a family with its own
``publish`` in ``recsys.model.families``, the sequential model, writes only ``metadata.json`` since the API
scores the files training wrote):
- ``user_ids.npy``, ``user_vectors.npy`` (every user of the users table), ``item_ids.npy``,
  ``item_vectors.npy`` (every product), ``item_norms.npy``: plain ``.npy`` files sorted by id, vectors
  float32 as in ``HybridModel`` (``recsys.model.embedding_files``); a family without cold start
  (als) publishes the users it was trained on only. The vectors are built ``BLOCK_ROWS``
  rows at a time into a memory-mapped local temporary file, which is then uploaded (streamed).
- ``metadata.json``: the registry row (with its params and metrics), the array shapes and the files,
  written last.

The SHA-256 of every file is computed from the local copy that is uploaded and recorded on
the registry row (``artifacts``) after the upload: write, then point. Readers (the API,
precompute, rollback) refuse a file whose checksum is not recorded or differs.

Retention keeps the folders of the newest ``keep`` registered versions, the LIVE
model, any CANDIDATE (an A/B test may serve it), the model just published and every
model that ``rollback_depth`` rollbacks could bring back (``registry.rollback_chain``);
other registered models' folders are deleted. A folder with no registry row is
left alone: it may belong to a training run that has not registered yet.
Every file is a whole-object put or a streamed upload (S3 retries come from botocore's standard mode).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from recsys import registry
from recsys.artifacts import ArtifactStore, model_key
from recsys.constants import COL_ITEM, COL_USER, STATUS_CANDIDATE, STATUS_LIVE
from recsys.integrity import folder_checksums
from recsys.model.embedding_files import BLOCK_ROWS, EMBEDDING_FILES, upload_files, write_side
from recsys.model.families import family_of, load_model, servable_users
from recsys.model.model_files import MODEL_FILES
from recsys.model.neighbour_files import NEIGHBOUR_FILES, write_neighbour_files
from recsys.model.train import load_products, load_users

log = logging.getLogger(__name__)
METADATA_FILE = "metadata.json"
MODELS_PREFIX = "models/"


def write_model_embeddings(model, users: pd.DataFrame, products: pd.DataFrame, folder: Path,
                           block: int = BLOCK_ROWS) -> None:
    """The ``EMBEDDING_FILES`` of ``model`` for these users and products in ``folder``, sorted by id,
    ``block`` rows of vectors at a time."""
    users = users.sort_values(COL_USER, kind="stable", ignore_index=True)
    products = products.sort_values(COL_ITEM, kind="stable", ignore_index=True)
    write_side(folder, "user", users[COL_USER].to_numpy(dtype=np.int64),
               lambda a, b: model.user_vectors(users.iloc[a:b]), model.dim, block)
    write_side(folder, "item", products[COL_ITEM].to_numpy(dtype=np.int64),
               lambda a, b: model.item_vectors(products.iloc[a:b]), model.dim, block)


def write_served_files(model, users: pd.DataFrame, products: pd.DataFrame, folder: Path) -> tuple[str, ...]:
    """The files serving reads for ``model`` in ``folder``, by its family's served form
    (``recsys.model.families``); returns their names in write order."""
    if model.served_as == "neighbours":
        write_neighbour_files(model.arrays(), folder)
        return NEIGHBOUR_FILES
    write_model_embeddings(model, users, products, folder)
    return EMBEDDING_FILES


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


def apply_retention(engine: Engine, store: ArtifactStore, keep: int, also_keep: set[str] = frozenset(),
                    rollback_depth: int = 0) -> list[str]:
    """Delete the folders of model versions beyond ``keep`` (never one that ``rollback_depth``
    rollbacks could bring back, nor an arm of a running A/B test); returns the deleted model ids."""
    also_keep = (set(also_keep) | set(registry.rollback_chain(engine, rollback_depth))
                 | registry.models_in_running_tests(engine))
    doomed = folders_to_delete(registry.list_models(engine), model_folders(store), keep, also_keep)
    for model_id in doomed:
        removed = store.delete_prefix(f"{MODELS_PREFIX}{model_id}/")
        log.info("retention: deleted %d file(s) of model %s", removed, model_id)
    return doomed


def publish_model(engine: Engine, store: ArtifactStore, model_id: str, keep: int = 5,
                  rollback_depth: int | None = None) -> dict:
    """Write the embedding files and then ``metadata.json`` of ``model_id``, record their checksums,
    then apply retention (``rollback_depth`` defaults to the setting)."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, not {keep}")
    if rollback_depth is None:
        from recsys.settings import get_settings

        rollback_depth = get_settings().rollback_depth
    row = registry.get_model(engine, model_id)  # UnknownModelError for a wrong id
    family = family_of(row.model_type)
    if family.publish is not None:  # served from the files training wrote (sequential): its own publish
        return family.publish(engine, store, row, keep, rollback_depth)
    model = load_model(store, row)  # any family; ArtifactIntegrityError for an altered file
    users, products = servable_users(model, load_users(engine), COL_USER), load_products(engine)
    with tempfile.TemporaryDirectory(prefix="recsys-publish-") as tmp:
        files = write_served_files(model, users, products, Path(tmp))
        checksums = folder_checksums(Path(tmp), files)
        keys = [*upload_files(store, model_id, Path(tmp), files), model_key(model_id, METADATA_FILE)]
    metadata = {
        "model": registry.model_to_dict(row),
        "params": row.params,
        "model_type": row.model_type,
        "served_as": model.served_as,
        "dim": model.dim,
        "users": int(len(users)),
        "items": int(len(products)),
        "files": [*(model_key(model_id, n) for n in MODEL_FILES), *keys],
        "sha256": checksums,
    }
    data = json.dumps(metadata, indent=2, default=str).encode()
    store.put_bytes(keys[-1], data)
    registry.record_artifacts(engine, model_id, {**checksums, METADATA_FILE: hashlib.sha256(data).hexdigest()})
    deleted = apply_retention(engine, store, keep, also_keep={model_id}, rollback_depth=rollback_depth)
    return {"model_id": model_id, "keys": keys, "uris": [store.uri(k) for k in keys], "deleted": deleted}

"""Publish a model: the files its family serves from, then ``metadata.json``, then retention.

Under ``models/<model_id>/`` beside the model's own files (``model.npz``/``model.json``, or what its family
trained), publish writes what the model's family serves the API from (``Model.write_served``: for a
vector family every servable user's and product's vectors as memory-mappable ``.npy`` files; a family that
serves the files training wrote writes nothing), built in a local temporary folder and uploaded streamed,
then ``metadata.json`` (the registry row with its params and metrics, the family, the file list and every
file's SHA-256), written last: a model with it is published (``published``).

The SHA-256 of every file is computed from the local copy that is uploaded and recorded on the registry row
(``artifacts``) after the upload: write, then point. Readers (the API, precompute, rollback) refuse a file
whose checksum is not recorded or differs. Retention then prunes old versions
(``recsys.artifacts.retention``). Every file is a whole-object put or a streamed upload (S3 retries come from
botocore's standard mode).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path

from sqlalchemy import Engine

from recsys import registry
from recsys.artifacts import ArtifactStore, model_key
from recsys.artifacts.retention import METADATA_FILE, apply_retention
from recsys.constants import COL_USER
from recsys.data.frames import load_products, load_users
from recsys.families import family_of, servable_users
from recsys.integrity import folder_checksums
from recsys.settings import default

log = logging.getLogger(__name__)


def published(store: ArtifactStore, model_id: str, model_type: str) -> bool:
    """The model can be served: what its family serves the API from is in the store (the last of its
    ``served_files``, written last; a family serving the files training wrote has them from training)."""
    family = family_of(model_type)
    return store.exists(model_key(model_id, family.served_files[-1]))


def upload_files(store: ArtifactStore, model_id: str, folder: Path, files: tuple[str, ...]) -> list[str]:
    """Stream ``files`` of ``folder`` to ``models/<model_id>/`` in order (the last one marks a complete set)."""
    keys = [model_key(model_id, name) for name in files]
    for name, key in zip(files, keys):
        store.upload(folder / name, key)
    return keys


def publish_model(engine: Engine, store: ArtifactStore, model_id: str, keep: int = default("keep_model_versions"),
                  rollback_depth: int = default("rollback_depth")) -> dict:
    """Write the served files and then ``metadata.json`` of ``model_id``, record their checksums, then apply
    retention (``keep`` versions, and every model ``rollback_depth`` rollbacks could bring back)."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, not {keep}")
    row = registry.get_model(engine, model_id)  # UnknownModelError for a wrong id
    family = family_of(row.model_type)
    model = family.load(store, model_id, row.artifacts)  # ArtifactIntegrityError for an altered file
    users, products = servable_users(family, model, load_users(engine), COL_USER), load_products(engine)
    own = family.own_files(store, model_id)
    with tempfile.TemporaryDirectory(prefix="recsys-publish-") as tmp:
        files = model.write_served(users, products, Path(tmp))
        checksums = folder_checksums(Path(tmp), files)
        keys = upload_files(store, model_id, Path(tmp), files)
    key = model_key(model_id, METADATA_FILE)
    keys.append(key)
    metadata = {
        "model": registry.model_to_dict(row),
        "params": row.params,
        "model_type": row.model_type,
        "family": family.name,
        "served_as": getattr(model, "served_as", family.name),
        "dim": getattr(model, "dim", None),
        "users": int(len(users)),
        "items": int(len(products)),
        "files": [*(model_key(model_id, n) for n in own), *keys],
        "sha256": {**{n: (row.artifacts or {}).get(n) for n in own}, **checksums},
    }
    data = json.dumps(metadata, indent=2, default=str).encode()
    store.put_bytes(key, data)
    registry.record_artifacts(engine, model_id, {**checksums, METADATA_FILE: hashlib.sha256(data).hexdigest()})
    deleted = apply_retention(engine, store, keep, also_keep={model_id}, rollback_depth=rollback_depth)
    return {"model_id": model_id, "keys": keys, "uris": [store.uri(k) for k in keys], "deleted": deleted}

"""A model's own files without pickle: ``model.npz`` (arrays, read with ``allow_pickle=False``) and
``model.json`` (everything else, with its ``format`` and ``family``), written in that order, their SHA-256
returned for the registry and checked before a byte is parsed (``recsys.integrity``). Families whose model
is a few arrays (``save_arrays`` / ``load_arrays``) and the hybrid (its own encoding of the same two files)
share the layout.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping

import numpy as np

from recsys.artifacts import ArtifactStore, model_key
from recsys.integrity import verify_bytes

MODEL_ARRAYS, MODEL_META, LEGACY_MODEL = "model.npz", "model.json", "model.pkl"
MODEL_FILES = (MODEL_ARRAYS, MODEL_META)  # write order
FORMAT = 1


class ModelArtifactError(LookupError):
    """A model's files are missing or do not hold a model."""


def save_arrays(store: ArtifactStore, model_id: str, arrays: Mapping[str, np.ndarray],
                meta: dict) -> dict[str, str]:
    """A model of another family than the hybrid as ``model.npz`` (``arrays``) then ``model.json``
    (``meta``, with ``format``); returns their ``{name: sha256}`` for the registry."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    files = {MODEL_ARRAYS: buf.getvalue(), MODEL_META: json.dumps({"format": FORMAT, **meta}, default=str).encode()}
    for name, data in files.items():
        store.put_bytes(model_key(model_id, name), data)
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def load_arrays(store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None,
                family: str) -> tuple[dict[str, np.ndarray], dict]:
    """The verified arrays and metadata written by ``save_arrays`` for a model of ``family``."""
    files = {}
    for name in MODEL_FILES:
        key = model_key(model_id, name)
        if not store.exists(key):
            raise ModelArtifactError(f"no model artifact {store.uri(key)} for model {model_id}")
        files[name] = verify_bytes(store.get_bytes(key), checksums, name, store.uri(key))
    where = store.uri(model_key(model_id, MODEL_META))
    try:
        meta = json.loads(files[MODEL_META])
        with np.load(io.BytesIO(files[MODEL_ARRAYS]), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (TypeError, ValueError, OSError) as exc:
        raise ModelArtifactError(f"{where}: not a saved {family} model ({type(exc).__name__}: {exc})") from exc
    if meta.get("format") != FORMAT or meta.get("family") != family:
        raise ModelArtifactError(f"{where}: a {meta.get('family', 'hybrid')!r} model of format "
                                 f"{meta.get('format')!r}, not a {family!r} model of format {FORMAT}")
    return arrays, meta


def model_saved(store: ArtifactStore, model_id: str) -> bool:
    """The model's files are in the store (``model.json`` is written last)."""
    return store.exists(model_key(model_id, MODEL_META))


def legacy_refusal(store: ArtifactStore, model_id: str) -> str:
    """What to do with a model an earlier version saved as a pickle (the error's text)."""
    return (f"{store.uri(model_key(model_id, LEGACY_MODEL))}: a model pickled by an earlier version is never "
            f"unpickled; convert it on a trusted machine with `python -m recsys models convert-legacy {model_id}` "
            "(README, Artifact integrity)")

"""A ``HybridModel`` on disk without pickle: ``model.npz`` (arrays) and ``model.json`` (everything else).

- ``model.npz`` (read with ``allow_pickle=False``): LightFM's twelve state arrays
  (``item_embeddings``, ``item_biases``, ``user_embeddings``, ``user_biases`` and their
  adagrad/adadelta accumulators ``*_gradients``, ``*_momentum``), its random state's
  MT19937 key, the id arrays of both feature spaces and the user ids of the segments.
- ``model.json``: the format version, LightFM's hyper-parameters and the rest of its
  random state (so training can continue exactly), the feature names of both spaces,
  the token vocabulary, the segment names and the model's ``info``.

Loading rebuilds a ``lightfm.LightFM`` from these parts; nothing on the way executes
code from the file. ``model.json`` is written last. Both files' SHA-256 go to the
registry (``recsys.integrity``) and are checked before a byte is parsed.

A model saved by an earlier version is one ``model.pkl`` (a pickle): it is never
unpickled here (``load_model`` refuses it, naming the conversion). An operator converts it
on a trusted machine with ``python -m recsys models convert-legacy MODEL_ID``
(``recsys.families.hybrid.legacy_pickle``, the one module that unpickles).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.artifacts import ArtifactStore, model_key
from recsys.integrity import verify_bytes
from recsys.families.files import (
    FORMAT, LEGACY_MODEL, MODEL_ARRAYS, MODEL_FILES, MODEL_META, ModelArtifactError, legacy_refusal,
)
from recsys.families.hybrid.features import FeatureSpace

if TYPE_CHECKING:
    from recsys.families.hybrid.model import HybridModel

STATE = tuple(f"{side}_{part}" for side in ("item", "user") for part in (
    "embeddings", "embedding_gradients", "embedding_momentum", "biases", "bias_gradients", "bias_momentum"))
HYPER = ("no_components", "k", "n", "learning_schedule", "loss", "learning_rate", "rho", "epsilon",
         "max_sampled", "item_alpha", "user_alpha")


def _space_parts(space: FeatureSpace, side: str) -> tuple[dict, dict]:
    ids = np.asarray(space.ids.to_numpy())
    if not np.issubdtype(ids.dtype, np.integer):
        raise ModelArtifactError(f"{side} ids must be integers to be saved, not {ids.dtype}")
    arrays = {f"{side}_ids": ids.astype(np.int64), f"{side}_identity_cols": space.identity_cols,
              f"{side}_attribute_cols": space.attribute_cols}
    return arrays, {"attributes": [str(a) for a in space.attributes], "n_features": int(space.n_features)}


def _space(arrays, meta: dict, side: str) -> FeatureSpace:
    return FeatureSpace(ids=pd.Index(arrays[f"{side}_ids"]), identity_cols=arrays[f"{side}_identity_cols"],
                        attributes=pd.Index(meta["attributes"], dtype=object),
                        attribute_cols=arrays[f"{side}_attribute_cols"], n_features=int(meta["n_features"]))


def encode(model: HybridModel) -> dict[str, bytes]:
    """``{file name: bytes}`` of a model, in ``MODEL_FILES`` order."""
    lfm = model.model
    kind, key, pos, has_gauss, gauss = lfm.random_state.get_state()
    users, user_meta = _space_parts(model.user_space, "user")
    items, item_meta = _space_parts(model.item_space, "item")
    segments = model.user_segments
    arrays = {**{name: getattr(lfm, name) for name in STATE}, "random_key": key, **users, **items,
              "segment_user_ids": np.asarray(segments.index.to_numpy(), dtype=np.int64)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    meta = {"format": FORMAT, "lightfm": {name: getattr(lfm, name) for name in HYPER},
            "random_state": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "user_space": user_meta, "item_space": item_meta, "vocabulary": sorted(model.vocabulary),
            "segments": [str(s) for s in segments.to_numpy()], "info": model.info}
    return {MODEL_ARRAYS: buf.getvalue(), MODEL_META: json.dumps(meta, default=str).encode()}


def decode(files: Mapping[str, bytes], where: str) -> HybridModel:
    """The ``HybridModel`` of verified ``model.npz`` and ``model.json`` bytes."""
    from lightfm import LightFM

    from recsys.families.hybrid.model import HybridModel

    try:
        meta = json.loads(files[MODEL_META])
        with np.load(io.BytesIO(files[MODEL_ARRAYS]), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        if meta.get("format") != FORMAT:
            raise ModelArtifactError(f"{where}: model format {meta.get('format')!r}, this version reads {FORMAT}")
        lfm = LightFM(**meta["lightfm"])
        for name in STATE:
            setattr(lfm, name, arrays[name])
        state = meta["random_state"]
        lfm.random_state.set_state((state["kind"], arrays["random_key"], state["pos"], state["has_gauss"],
                                    state["gauss"]))
        segments = pd.Series(np.array(meta["segments"], dtype=object),
                             index=pd.Index(arrays["segment_user_ids"]), dtype=object)
        return HybridModel(lfm, _space(arrays, meta["user_space"], "user"), _space(arrays, meta["item_space"], "item"),
                           frozenset(meta["vocabulary"]), segments, meta.get("info"))
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ModelArtifactError(f"{where}: not a saved HybridModel ({type(exc).__name__}: {exc})") from exc


def save_model(model: HybridModel, store: ArtifactStore, model_id: str) -> dict[str, str]:
    """Write ``model.npz`` then ``model.json``; returns their ``{name: sha256}`` for the registry."""
    files = encode(model)
    for name, data in files.items():
        store.put_bytes(model_key(model_id, name), data)
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def load_model(store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None) -> HybridModel:
    """Read, verify (``ArtifactIntegrityError`` naming the file) and rebuild a model."""
    files = {}
    for name in MODEL_FILES:
        key = model_key(model_id, name)
        if not store.exists(key):
            if store.exists(model_key(model_id, LEGACY_MODEL)):
                raise ModelArtifactError(legacy_refusal(store, model_id))
            raise ModelArtifactError(f"no model artifact {store.uri(key)} for model {model_id}")
        files[name] = verify_bytes(store.get_bytes(key), checksums, name, store.uri(key))
    return decode(files, store.uri(model_key(model_id, MODEL_META)))

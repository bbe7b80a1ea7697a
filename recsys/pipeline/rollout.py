"""What an operator does for a model of an earlier version (``python -m recsys models trust|convert-legacy``):
``trust`` records the checksums of a model registered before them, ``convert-legacy`` turns its pickled
``model.pkl`` into ``model.npz`` + ``model.json``.

Switching the LIVE model by hand (``models promote|rollback``) is ``recsys.pipeline.release``'s
``promote_live`` / ``rollback_live`` (verify, publish, precompute, then switch); ``models verify`` is its
``verify_model``.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from recsys import registry
from recsys.artifacts import ArtifactStore, model_key
from recsys.artifacts.retention import METADATA_FILE
from recsys.families import family_of
from recsys.families.files import LEGACY_MODEL, legacy_refusal
from recsys.integrity import verify_bytes
from recsys.pipeline.release import (  # noqa: F401  (the CLI's entry points)
    promote_live, required_files, rollback_live, verify_model,
)

log = logging.getLogger(__name__)


def trust_model(engine: Engine, store: ArtifactStore, model_id: str) -> dict:
    """Record the checksums of a model registered before checksums existed (its files as they are now).

    Refused when the model already has recorded checksums: a record is never replaced by what
    is in the bucket, so this cannot bless a file altered after it was recorded. Refused when the
    folder holds a ``model.pkl``: a pickle is never trusted (``convert_legacy`` first).
    """
    if store.exists(model_key(model_id, LEGACY_MODEL)):
        raise registry.RegistryError(f"model {model_id} is not trusted: {legacy_refusal(store, model_id)}, then run "
                                     "`models trust` again for its other files")
    if registry.get_artifacts(engine, model_id):
        raise registry.RegistryError(f"model {model_id} already has recorded checksums: verify it instead")
    family = family_of(registry.get_model(engine, model_id).model_type)
    candidates = (*family.own_files(store, model_id), *family.served_files, *family.legacy_files, METADATA_FILE)
    names = [n for n in dict.fromkeys(candidates) if store.exists(model_key(model_id, n))]
    if not names:
        raise registry.RegistryError(f"model {model_id} has no files in {store.uri(model_key(model_id, ''))}")
    checksums = {n: store.sha256(model_key(model_id, n)) for n in names}
    registry.record_artifacts(engine, model_id, checksums)
    log.warning("checksums of model %s recorded from the files as they are: %s", model_id, sorted(checksums))
    return {"model_id": model_id, "recorded": checksums}


def convert_legacy(engine: Engine, store: ArtifactStore, model_id: str) -> dict:
    """Turn a model's legacy ``model.pkl`` into ``model.npz`` + ``model.json`` and remove the pickle.

    For an operator on a trusted machine (it unpickles, through ``legacy_pickle``'s restricted
    unpickler). A pickle whose checksum the registry recorded must match it. The new files'
    checksums are recorded (and the pickle's dropped) when the model has a record; a model
    registered before checksums has none, and ``trust_model`` records all its files next.
    """
    from recsys.families.hybrid.files import save_model
    from recsys.families.hybrid.legacy_pickle import unpickle_model

    key = model_key(model_id, LEGACY_MODEL)
    recorded = registry.get_artifacts(engine, model_id)
    if not store.exists(key):
        raise registry.RegistryError(f"model {model_id} has no {store.uri(key)} to convert")
    data = store.get_bytes(key)
    if LEGACY_MODEL in recorded:
        verify_bytes(data, recorded, LEGACY_MODEL, store.uri(key))
    checksums = save_model(unpickle_model(data, store.uri(key)), store, model_id)
    if recorded:
        registry.record_artifacts(engine, model_id, checksums, drop=(LEGACY_MODEL,))
    store.delete_prefix(key)
    log.warning("model %s converted from %s to %s", model_id, LEGACY_MODEL, ", ".join(checksums))
    return {"model_id": model_id, "written": checksums, "removed": store.uri(key),
            "recorded": bool(recorded), "next": None if recorded else f"python -m recsys models trust {model_id}"}

"""Switching the LIVE model by hand (``python -m recsys models promote|rollback|verify``): check, write, then point.

Also what an operator does for a model of an earlier version: ``trust`` (record the checksums of a model
registered before them) and ``convert-legacy`` (its pickled ``model.pkl`` to ``model.npz`` + ``model.json``).

A manual switch first verifies every file of the target model against the checksums
its registry row records (``recsys.integrity``), then precomputes the target's lists
into the LIVE keys, and only then switches the registry. A missing or altered file,
or a precompute that fails, leaves the registry (and so the API) on the current LIVE
model; lists already written for the target carry its model id, so the API treats
them as stale and scores the current model's users on the fly until the next run.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from recsys import registry
from recsys.artifacts import ArtifactStore, model_key
from recsys.constants import STATUS_LIVE
from recsys.integrity import OK, check_stored, require_intact, verify_bytes
from recsys.model.embedding_files import EMBEDDING_FILES, LEGACY_FILE
from recsys.model.legacy_pickle import unpickle_model
from recsys.model.model_files import LEGACY_MODEL, MODEL_FILES, legacy_refusal, save_model
from recsys.settings import Settings, get_settings

log = logging.getLogger(__name__)


def required_files(store: ArtifactStore, model_id: str) -> tuple[str, ...]:
    """The files every model needs: its own ``model.npz`` + ``model.json`` (a legacy ``model.pkl`` is
    converted first: ``convert_legacy``). Every other file the registry recorded for it (its published
    embeddings) is checked too."""
    return MODEL_FILES


def verify_model(engine: Engine, store: ArtifactStore, model_id: str | None = None) -> dict:
    """Every file of ``model_id`` (default: the LIVE model) against its recorded checksum (streamed)."""
    if model_id is None:
        live = registry.get_live(engine)
        if live is None:
            raise registry.RegistryError("no LIVE model to verify: name a model id")
        model_id = live.model_id
    row = registry.get_model(engine, model_id)
    files = check_stored(store, model_id, row.artifacts, required_files(store, model_id))
    return {"model_id": model_id, "status": row.status, "ok": all(s == OK for s in files.values()), "files": files}


def _require_servable(engine: Engine, store: ArtifactStore, model_id: str) -> None:
    require_intact(store, model_id, registry.get_artifacts(engine, model_id), required_files(store, model_id))


def _precompute(engine: Engine, store: ArtifactStore, redis, model_id: str, settings: Settings) -> dict:
    from recsys.pipeline.precompute import precompute_all

    out = precompute_all(engine, store, redis, model_id=model_id, settings=settings, as_live=True)
    return {k: out[k] for k in ("day", "model_id", "users", "seconds")}


def rollback_live(engine: Engine, store: ArtifactStore, redis, settings: Settings | None = None) -> dict:
    """One step back in the promotion history, once the target's files verify and its lists are written."""
    settings = settings or get_settings()
    plan = registry.rollback_target(engine)
    _require_servable(engine, store, plan["to"])
    lists = _precompute(engine, store, redis, plan["to"], settings)
    out = registry.rollback(engine, expected_live=plan["from"])
    log.warning("rolled back from %s to %s", plan["from"], plan["to"])
    return {**out, "precompute": lists}


def promote_live(engine: Engine, store: ArtifactStore, redis, model_id: str, reason: str,
                 settings: Settings | None = None) -> dict:
    """Make ``model_id`` LIVE by hand, once its files verify and its lists are written."""
    settings = settings or get_settings()
    if registry.get_model(engine, model_id).status == STATUS_LIVE:
        return registry.promote(engine, model_id, reason=reason)
    _require_servable(engine, store, model_id)
    lists = _precompute(engine, store, redis, model_id, settings)
    return {**registry.promote(engine, model_id, reason=reason), "precompute": lists}


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
    candidates = (*required_files(store, model_id), *EMBEDDING_FILES, LEGACY_FILE, "metadata.json")
    names = [n for n in candidates if store.exists(model_key(model_id, n))]
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

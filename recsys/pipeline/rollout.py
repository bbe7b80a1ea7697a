"""The registry's checksums of a model registered before checksums existed (``python -m recsys models trust``).

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
from recsys.pipeline.release import (  # noqa: F401  (the CLI's entry points)
    promote_live, required_files, rollback_live, verify_model,
)

log = logging.getLogger(__name__)


def trust_model(engine: Engine, store: ArtifactStore, model_id: str) -> dict:
    """Record the checksums of a model registered before checksums existed (its files as they are now).

    Refused when the model already has recorded checksums: a record is never replaced by what
    is in the bucket, so this cannot bless a file altered after it was recorded.
    """
    if registry.get_artifacts(engine, model_id):
        raise registry.RegistryError(f"model {model_id} already has recorded checksums: verify it instead")
    family = family_of(registry.get_model(engine, model_id).model_type)
    candidates = (*family.own_files(store, model_id), *family.served_files, *family.legacy_files, METADATA_FILE)
    names = [n for n in candidates if store.exists(model_key(model_id, n))]
    if not names:
        raise registry.RegistryError(f"model {model_id} has no files in {store.uri(model_key(model_id, ''))}")
    checksums = {n: store.sha256(model_key(model_id, n)) for n in names}
    registry.record_artifacts(engine, model_id, checksums)
    log.warning("checksums of model %s recorded from the files as they are: %s", model_id, sorted(checksums))
    return {"model_id": model_id, "recorded": checksums}

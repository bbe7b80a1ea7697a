"""Model folders in the artifact store and their retention.

Retention keeps the folders of the newest ``keep`` registered versions, the LIVE model, any CANDIDATE (an
A/B test may serve it), the models named in ``also_keep`` (the one just published), both arms of a running
A/B test and every model that ``rollback_depth`` rollbacks could bring back (``registry.rollback_chain``);
other registered models' folders are deleted whole. A folder with no registry row is left alone: it may
belong to a training run that has not registered yet.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from recsys import registry
from recsys.artifacts import ArtifactStore
from recsys.constants import STATUS_CANDIDATE, STATUS_LIVE

log = logging.getLogger(__name__)
METADATA_FILE = "metadata.json"  # written last by publish: a model with it is published
MODELS_PREFIX = "models/"


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

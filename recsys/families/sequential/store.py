"""The sequential model's files in the artifact store: written with checksums, read verified.

A model is its ONNX export (``recsys.families.sequential.export``): ``SEQUENTIAL_FILES``, uploaded to
``models/<model_id>/`` with ``config.json`` last (its presence means the folder is complete), each file's
SHA-256 recorded on the registry row and checked before anything parses it. The API serves these same files
(nothing else is published for this family). Loading uses onnxruntime and numpy only (no torch).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from recsys.artifacts import ArtifactStore, model_key
from recsys.integrity import folder_checksums, verify_file
from recsys.families.sequential import config as C
from recsys.families.sequential.config import SequentialConfig

SEQUENTIAL_FILES = C.SEQUENTIAL_FILES


def training_unavailable() -> str | None:
    """Why the sequential model cannot be trained in this installation (torch and the ONNX exporter of
    ``requirements-train.txt`` are missing: the API's and ``make run``'s), or None."""
    try:
        import recsys.families.sequential.export  # noqa: F401  (torch.onnx, onnx, onnxscript)
        import recsys.families.sequential.train  # noqa: F401  (torch)
    except ImportError as exc:
        return f"the sequential model needs torch and onnx ({exc}); pip install -r requirements-train.txt"
    return None


def config_from_settings(settings, **overrides) -> SequentialConfig:
    """The model's defaults, with the time budget, threads and seed of the settings (overrides win)."""
    values = {"time_budget_s": settings.sequential_time_budget_seconds,
              "threads": settings.train_threads or os.cpu_count() or 1, "seed": settings.seed}
    return dataclasses.replace(SequentialConfig(), **{**values, **overrides})


def upload_folder(store: ArtifactStore, model_id: str, folder: Path) -> dict[str, str]:
    """Upload an exported folder's files (``config.json`` last); returns their ``{name: sha256}`` for the
    registry."""
    checksums = folder_checksums(folder, SEQUENTIAL_FILES)
    for name in SEQUENTIAL_FILES:
        store.upload(folder / name, model_key(model_id, name))
    return checksums


def sequential_saved(store: ArtifactStore, model_id: str) -> bool:
    """The model's folder is complete in the store (``config.json`` is uploaded last); retention may
    have deleted an archived model's files while its registry row stays."""
    return store.exists(model_key(model_id, C.CONFIG_FILE))


def download_verified(store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None,
                      folder: Path) -> Path:
    """The model's files in ``folder``, each verified against ``checksums`` before anything reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SEQUENTIAL_FILES:
        key = model_key(model_id, name)
        path = store.download(key, folder / name)  # FileNotFoundError for a missing file
        try:
            verify_file(path, checksums, name, store.uri(key))
        except ValueError:
            path.unlink(missing_ok=True)  # an unverified file is not left where a later load could find it
            raise
    return folder


def load_sequential(store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None,
                    folder: Path | None = None, threads: int = 1):
    """The verified ``SequentialRuntime`` of a registered model (files kept in ``folder`` when given; else
    read into memory from a temporary folder)."""
    from recsys.families.sequential.scoring import load_runtime

    if folder is not None:
        return load_runtime(download_verified(store, model_id, checksums, Path(folder)), threads=threads)
    with tempfile.TemporaryDirectory(prefix="recsys-sequential-") as tmp:
        return load_runtime(download_verified(store, model_id, checksums, Path(tmp)), threads=threads, mmap=False)

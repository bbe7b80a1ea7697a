"""This node's local copy of published embeddings: ``<var_dir>/embeddings/<model_id>/``, shared by its workers.

A model's files are downloaded once per node. The first worker takes an exclusive
``flock`` on ``.lock+<model_id>``, streams the files into a temporary folder
``.tmp+<model_id>+<random>``, checks each file's SHA-256 against the checksums the
registry recorded at publish (``recsys.integrity``), then shapes, dtypes and ids
(strictly increasing), writes those checksums to ``MANIFEST`` in the folder
and renames the folder into place; a worker that waited on the lock then finds the
folder and reuses it. The rename is atomic, so a folder named after a model is
complete and verified when it appears. Workers map the files read-only: the page cache
holds one copy. A folder is reused only after each of its files is hashed again against
the registry's record (at every load: a worker's start, a new LIVE or A/B model), so a
file changed on this node's disk after the download is refused (logged at ERROR) and
downloaded again; so is a folder whose ``MANIFEST`` is not the registry's current
record (a folder left by an earlier version, or a record that changed).

``prune`` removes the folders of models no longer served (a worker that still maps
a removed file keeps its pages until it lets go of them) and the temporary folders
of downloads that died (their lock is free).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from recsys.artifacts import ArtifactStore, model_key, sha256_file
from recsys.model.embedding_files import (
    EMBEDDING_FILES,
    NEIGHBOUR_MARKER,
    EmbeddingsError,
    check_increasing,
    download_files,
    open_folder,
    published_format,
)
from recsys.model.neighbour_files import NEIGHBOUR_FILES, open_neighbour_folder

log = logging.getLogger(__name__)
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
LOCK, TMP = ".lock+", ".tmp+"
MANIFEST = "sha256.json"  # the checksums a cached folder was verified against
SERVED_FILES = tuple(dict.fromkeys(EMBEDDING_FILES + NEIGHBOUR_FILES))  # vector and item-kNN layouts


def _recorded(checksums) -> dict[str, str]:
    return {name: (checksums or {}).get(name) for name in SERVED_FILES if (checksums or {}).get(name)}


def _verified_for(folder: Path, checksums) -> bool:
    """The cached folder was verified against exactly these recorded checksums, and its files are still
    those: each is hashed again (the manifest lives in the folder, so it alone proves nothing)."""
    try:
        if json.loads((folder / MANIFEST).read_text()) != _recorded(checksums):
            return False
        return _intact(folder, checksums)
    except (OSError, ValueError):
        return False


def _intact(folder: Path, checksums) -> bool:
    """The folder holds exactly the files of its layout, each with the SHA-256 the registry recorded."""
    layout = NEIGHBOUR_FILES if (folder / NEIGHBOUR_MARKER).exists() else EMBEDDING_FILES
    present = {p.name for p in folder.iterdir()} - {MANIFEST}
    changed = sorted(present ^ set(layout)) or [
        name for name in layout if sha256_file(folder / name) != (checksums or {}).get(name)]
    if changed:
        log.error("embeddings cache %s: %s changed on this node's disk since it was verified: refused, "
                  "downloaded again", folder, ", ".join(changed))
    return not changed


def model_folder(root: Path, model_id: str) -> Path:
    """``root/<model_id>``; ``EmbeddingsError`` for an id that is not a plain folder name."""
    if not SAFE_ID.fullmatch(model_id):
        raise EmbeddingsError(f"model id {model_id!r} is not a plain folder name")
    return root / model_id


@contextlib.contextmanager
def _locked(path: Path, wait: bool = True) -> Iterator[bool]:
    """An exclusive ``flock`` on ``path`` (created if missing); yields False when ``wait`` is off and it is taken."""
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _download(store: ArtifactStore, model_id: str, folder: Path, checksums, fmt: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP}{model_id}+", dir=folder.parent))
    try:
        if fmt == "neighbours":  # an item-kNN model (ids are checked by open_neighbour_folder)
            download_files(store, model_id, tmp, checksums, NEIGHBOUR_FILES)
            open_neighbour_folder(tmp)  # checks; the maps are dropped at once
        else:
            download_files(store, model_id, tmp, checksums)
            arrays = open_folder(tmp)
            for side in ("user_ids", "item_ids"):
                check_increasing(arrays[side], f"{store.uri(model_key(model_id, side + '.npy'))}")
            del arrays
        (tmp / MANIFEST).write_text(json.dumps(_recorded(checksums)))
        if folder.is_dir():  # an unverified or outdated copy: replaced by the verified one
            shutil.rmtree(folder)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():
                raise
            log.info("embeddings of %s: another worker's download finished first", model_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when the rename succeeded


def ensure_local(store: ArtifactStore, model_id: str, root: Path, checksums) -> Path | None:
    """The complete, verified local folder of ``model_id``'s files, downloaded when this node lacks it.

    None when the model has only a legacy ``embeddings.npz``; ``EmbeddingsError`` when it
    has neither, or when a file is missing or malformed; ``ArtifactIntegrityError`` when a
    file's checksum is not recorded in ``checksums`` or differs.
    """
    folder = model_folder(root, model_id)
    if folder.is_dir() and _verified_for(folder, checksums):
        return folder
    fmt = published_format(store, model_id)
    if fmt == "npz":
        return None
    if fmt is None:
        raise EmbeddingsError(f"model {model_id} has no published embeddings in {store.uri(model_key(model_id, ''))}")
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{LOCK}{model_id}"):
        if not (folder.is_dir() and _verified_for(folder, checksums)):  # else another worker did it meanwhile
            _download(store, model_id, folder, checksums, fmt)
            log.info("embeddings of %s downloaded to %s", model_id, folder)
    return folder


def prune(root: Path, keep: set[str]) -> list[str]:
    """Remove the folders of models not in ``keep`` and dead downloads' leftovers; returns the removed model ids."""
    if not root.is_dir():
        return []
    removed = []
    for entry in sorted(root.iterdir()):
        if not entry.name.startswith(".") and entry.is_dir() and entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    for lock in sorted(root.glob(f"{LOCK}*")):
        model_id = lock.name[len(LOCK):]
        with _locked(lock, wait=False) as free:
            if not free:
                continue  # a download of this model is running
            for tmp in root.glob(f"{TMP}{glob.escape(model_id)}+*"):
                shutil.rmtree(tmp, ignore_errors=True)
            if model_id not in keep:
                lock.unlink(missing_ok=True)
    return removed

"""This node's local copy of served models' files: ``<var_dir>/embeddings/<model_id>/``, shared by its workers.

What a model is served from is its family's business (``ModelFamily.served_files`` and ``open_served``,
``recsys.families``): this module downloads those files once per node, verifies them and opens them.
A model's files are downloaded once per node. The first worker takes an exclusive
``flock`` on ``.lock+<model_id>``, streams the files into a temporary folder
``.tmp+<model_id>+<random>``, checks each file's SHA-256 against the checksums the
registry recorded at publish (``recsys.integrity``), then shapes, dtypes and ids
(the family opens them: ``open_served`` checks shapes, dtypes and ids), writes those checksums to
``MANIFEST`` in the folder and renames the folder into place; a worker that waited on the lock then finds the
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
from recsys.families import REGISTERED, ModelFamily, ServedModel, family_of
from recsys.families.vectors.files import EmbeddingsError
from recsys.integrity import verify_file

log = logging.getLogger(__name__)
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
LOCK, TMP = ".lock+", ".tmp+"
MANIFEST = "sha256.json"  # the checksums a cached folder was verified against


def _recorded(checksums, files: tuple[str, ...]) -> dict[str, str]:
    return {name: (checksums or {}).get(name) for name in files if (checksums or {}).get(name)}


def _verified_for(folder: Path, checksums, files: tuple[str, ...]) -> bool:
    """The cached folder was verified against exactly these recorded checksums, and its files are still
    those: each is hashed again (the manifest lives in the folder, so it alone proves nothing)."""
    try:
        if json.loads((folder / MANIFEST).read_text()) != _recorded(checksums, files):
            return False
        return _intact(folder, checksums, files)
    except (OSError, ValueError):
        return False


def _intact(folder: Path, checksums, files: tuple[str, ...]) -> bool:
    """The folder holds exactly the family's served files, each with the SHA-256 the registry recorded."""
    present = {p.name for p in folder.iterdir()} - {MANIFEST}
    changed = sorted(present ^ set(files)) or [
        name for name in files if sha256_file(folder / name) != (checksums or {}).get(name)]
    if changed:
        log.error("embeddings cache %s: %s changed on this node's disk since it was verified: refused, "
                  "downloaded again", folder, ", ".join(changed))
    return not changed


def family_of_files(store: ArtifactStore, model_id: str) -> ModelFamily:
    """The family whose served files a model has in the store (when its registry row is not at hand: the
    last file of a family's set marks it complete); ``EmbeddingsError`` when none."""
    for family in REGISTERED:
        if family.served_files and store.exists(model_key(model_id, family.served_files[-1])):
            return family
    for family in REGISTERED:
        if any(store.exists(model_key(model_id, name)) for name in family.legacy_files):
            return family
    raise EmbeddingsError(f"model {model_id} has no published embeddings in {store.uri(model_key(model_id, ''))}")


def download_files(store: ArtifactStore, model_id: str, folder: Path, checksums, files: tuple[str, ...]) -> None:
    """Every file of ``files`` into ``folder``, streamed, then checked against ``checksums``;
    ``EmbeddingsError`` for a missing one, ``ArtifactIntegrityError`` for an unrecorded or altered one."""
    for name in files:
        uri = store.uri(model_key(model_id, name))
        try:
            store.download(model_key(model_id, name), folder / name)
        except FileNotFoundError as exc:
            raise EmbeddingsError(f"model {model_id}: {uri} is missing") from exc
        verify_file(folder / name, checksums, name, uri)


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


def _download(store: ArtifactStore, model_id: str, folder: Path, checksums, family: ModelFamily) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP}{model_id}+", dir=folder.parent))
    try:
        download_files(store, model_id, tmp, checksums, family.served_files)
        family.check_served(model_id, tmp)  # the family checks its files (shapes, dtypes, ids)
        (tmp / MANIFEST).write_text(json.dumps(_recorded(checksums, family.served_files)))
        if folder.is_dir():  # an unverified or outdated copy: replaced by the verified one
            shutil.rmtree(folder)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():
                raise
            log.info("files of %s: another worker's download finished first", model_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when the rename succeeded


def ensure_local(store: ArtifactStore, model_id: str, root: Path, checksums, family: ModelFamily) -> Path | None:
    """The complete, verified local folder of ``model_id``'s served files, downloaded when this node lacks it.

    None when the model was published by an earlier version (only its ``legacy_files`` are in the store);
    ``EmbeddingsError`` when a file is missing or malformed; ``ArtifactIntegrityError`` when a file's checksum
    is not recorded in ``checksums`` or differs.
    """
    folder = model_folder(root, model_id)
    files = family.served_files
    if folder.is_dir() and _verified_for(folder, checksums, files):
        return folder
    if not store.exists(model_key(model_id, files[-1])) and any(
            store.exists(model_key(model_id, name)) for name in family.legacy_files):
        return None  # published by an earlier version
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{LOCK}{model_id}"):
        if not (folder.is_dir() and _verified_for(folder, checksums, files)):  # else another worker did it meanwhile
            _download(store, model_id, folder, checksums, family)
            log.info("files of %s downloaded to %s", model_id, folder)
    return folder


def load_served(store: ArtifactStore, model_id: str, cache_root: Path, checksums, family: ModelFamily | str | None = None,
                products=None) -> ServedModel:
    """A published model as this node serves it: its family's served files mapped from this node's cache under
    ``cache_root`` (downloaded and verified against ``checksums``, the registry's record, on first use), or an
    earlier version's files read whole (``open_legacy``). ``family``: the registry row's family or
    ``model_type`` (None: found from the recorded files); ``products``: the catalogue (``product_id``,
    ``category``, ``price``) for a family that gives new products a vector. Blocking: call it in a thread."""
    model_folder(Path(cache_root), model_id)  # EmbeddingsError for an id that is not a plain folder name
    family = family_of(family) if isinstance(family, str) else (family or family_of_files(store, model_id))
    folder = ensure_local(store, model_id, Path(cache_root), checksums, family)
    if folder is None:
        return family.open_legacy(store, model_id, checksums)
    return family.open_served(model_id, folder, products)


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

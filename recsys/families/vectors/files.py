"""The published embeddings of a model: plain ``.npy`` files that can be memory-mapped.

Files under ``models/<model_id>/`` (written by publish, in this order):
- ``user_ids.npy`` int64, strictly increasing; ``user_vectors.npy`` float32 ``(users, dim)``, same order;
- ``item_ids.npy`` int64, strictly increasing; ``item_vectors.npy`` float32 ``(items, dim)``, same order;
- ``item_norms.npy`` float32 ``(items,)``: L2 norm of each item vector without its bias column, so the
  cosine of items i and j is ``(E[i] @ E[j]) / (norms[i] * norms[j])`` with the bias zeroed in ``E[j]``.

``item_norms.npy`` is written last: once it exists the others do. A model published
by an earlier version has one ``embeddings.npz`` instead (same arrays, any order, no
norms); ``read_embeddings`` and the API still read it. Every file is checked against the
checksums the registry recorded at publish (``recsys.integrity``) before it is parsed.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recsys.artifacts import ArtifactStore, model_key
from recsys.integrity import folder_checksums, verify_bytes, verify_file

from recsys.families.vectors.names import (  # noqa: F401  (re-exported)
    EMBEDDING_FILES, ITEM_IDS, ITEM_NORMS, ITEM_VECTORS, LEGACY_FILE, USER_IDS, USER_VECTORS,
)

ARRAYS = ("user_ids", "user_vectors", "item_ids", "item_vectors")
BLOCK_ROWS = 262_144  # rows built and written at a time: 100 MB of float32 at 97 components
CHECK_BLOCK = 4_194_304  # ids compared at a time when checking the order


class EmbeddingsError(ValueError):
    """Embeddings that are missing or do not have the documented arrays."""


def body_norms(vectors: np.ndarray) -> np.ndarray:
    """float32 L2 norm of each row without its last (bias) column; of the whole row when dim is 1."""
    body = vectors[:, :-1] if vectors.shape[1] > 1 else vectors
    return np.linalg.norm(np.asarray(body, dtype=np.float32), axis=1).astype(np.float32)


def check_increasing(ids: np.ndarray, what: str) -> None:
    """``EmbeddingsError`` unless ``ids`` are strictly increasing (sorted, no duplicates), in blocks."""
    for start in range(0, max(len(ids) - 1, 0), CHECK_BLOCK):
        block = np.asarray(ids[start:start + CHECK_BLOCK + 1])
        if not np.all(block[1:] > block[:-1]):
            raise EmbeddingsError(f"{what} are not strictly increasing (unsorted or duplicated ids)")


def write_side(folder: Path, side: str, ids: np.ndarray, rows: Callable[[int, int], np.ndarray], dim: int,
               block: int = BLOCK_ROWS) -> None:
    """``<side>_ids.npy`` and ``<side>_vectors.npy`` (plus ``item_norms.npy`` for items) in ``folder``.

    ``ids`` must be strictly increasing; ``rows(start, stop)`` returns the vectors of
    ``ids[start:stop]``, so at most ``block`` rows are in memory at once.
    """
    ids = np.asarray(ids, dtype=np.int64)
    check_increasing(ids, f"{side}_ids")
    np.save(folder / f"{side}_ids.npy", ids)
    vectors = np.lib.format.open_memmap(folder / f"{side}_vectors.npy", mode="w+", dtype=np.float32,
                                        shape=(len(ids), dim))
    norms = np.empty(len(ids), dtype=np.float32) if side == "item" else None
    for start in range(0, len(ids), block):
        stop = min(start + block, len(ids))
        chunk = np.asarray(rows(start, stop), dtype=np.float32)
        if chunk.shape != (stop - start, dim):
            raise EmbeddingsError(f"{side} rows {start}:{stop} have shape {chunk.shape}, not {(stop - start, dim)}")
        vectors[start:stop] = chunk
        if norms is not None:
            norms[start:stop] = body_norms(chunk)
    vectors.flush()
    del vectors
    if norms is not None:
        np.save(folder / ITEM_NORMS, norms)


def write_arrays(folder: Path, user_ids, user_vectors, item_ids, item_vectors) -> None:
    """The files of in-memory arrays (any order: sorted by id here)."""
    for side, ids, vectors in (("user", user_ids, user_vectors), ("item", item_ids, item_vectors)):
        ids, vectors = np.asarray(ids, dtype=np.int64), np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(ids):
            raise EmbeddingsError(f"{side}_vectors {vectors.shape} do not match {len(ids)} {side}_ids")
        order = np.argsort(ids, kind="stable")
        write_side(folder, side, ids[order], lambda a, b, v=vectors, o=order: v[o[a:b]], vectors.shape[1])


def upload_files(store: ArtifactStore, model_id: str, folder: Path,
                 files: tuple[str, ...] = EMBEDDING_FILES) -> list[str]:
    """Stream ``files`` of ``folder`` to ``models/<model_id>/`` in order (``item_norms.npy`` last)."""
    keys = [model_key(model_id, name) for name in files]
    for name, key in zip(files, keys):
        store.upload(folder / name, key)
    return keys


def publish_arrays(store: ArtifactStore, model_id: str, user_ids, user_vectors, item_ids,
                   item_vectors) -> dict[str, str]:
    """In-memory arrays published as a model's files (tests, benchmarks); returns their ``{name: sha256}``
    (what the registry row must record for them to be read)."""
    with tempfile.TemporaryDirectory(prefix="recsys-embeddings-") as tmp:
        write_arrays(Path(tmp), user_ids, user_vectors, item_ids, item_vectors)
        upload_files(store, model_id, Path(tmp))
        return folder_checksums(Path(tmp), EMBEDDING_FILES)


def check_arrays(arrays: dict[str, np.ndarray], where: str) -> None:
    """Dtypes and shapes of the arrays agree (reads only the headers of memory-mapped files)."""
    for side in ("user", "item"):
        ids, vectors = arrays[f"{side}_ids"], arrays[f"{side}_vectors"]
        if ids.dtype != np.int64 or ids.ndim != 1:
            raise EmbeddingsError(f"{where}: {side}_ids are {ids.dtype} {ids.shape}, not 1-d int64")
        if vectors.dtype != np.float32 or vectors.ndim != 2 or len(vectors) != len(ids):
            raise EmbeddingsError(f"{where}: {side}_vectors {vectors.dtype} {vectors.shape} do not match "
                                  f"{len(ids)} {side}_ids")
    users, items = arrays["user_vectors"], arrays["item_vectors"]
    if len(users) and users.shape[1] != items.shape[1]:
        raise EmbeddingsError(f"{where}: user dim {users.shape[1]} != item dim {items.shape[1]}")
    norms = arrays.get("item_norms")
    if norms is not None and (norms.dtype != np.float32 or norms.shape != (len(items),)):
        raise EmbeddingsError(f"{where}: item_norms {norms.dtype} {norms.shape} do not match {len(items)} items")


def load_folder(folder: Path, names: tuple[str, ...], mmap_mode: str | None = "r") -> dict[str, np.ndarray]:
    """``{name without .npy: array}`` of the ``.npy`` files ``names`` in ``folder`` (memory-mapped by default)."""
    arrays = {}
    for name in names:
        try:
            arrays[name.removesuffix(".npy")] = np.load(folder / name, mmap_mode=mmap_mode, allow_pickle=False)
        except FileNotFoundError as exc:
            raise EmbeddingsError(f"{folder} lacks {name}") from exc
        except ValueError as exc:  # not an .npy file, or a truncated one
            raise EmbeddingsError(f"{folder / name} is not a readable .npy array: {exc}") from exc
    return arrays


def open_folder(folder: Path, mmap_mode: str | None = "r") -> dict[str, np.ndarray]:
    """The five arrays of a folder of ``EMBEDDING_FILES`` (memory-mapped read-only by default), checked."""
    arrays = load_folder(folder, EMBEDDING_FILES, mmap_mode)
    check_arrays(arrays, str(folder))
    return arrays


def arrays_from_npz(data: bytes, where: str) -> dict[str, np.ndarray]:
    """The four arrays of a legacy ``embeddings.npz``, read whole."""
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise EmbeddingsError(f"{where} is not a readable .npz file: {exc}") from exc
    if not hasattr(npz, "files"):
        raise EmbeddingsError(f"{where} is a single array, not an .npz archive")
    with npz:
        missing = set(ARRAYS) - set(npz.files)
        if missing:
            raise EmbeddingsError(f"{where} lacks {sorted(missing)}")
        try:
            return {name: npz[name] for name in ARRAYS}
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise EmbeddingsError(f"{where} is not a readable .npz file: {exc}") from exc


def download_files(store: ArtifactStore, model_id: str, folder: Path, checksums,
                   files: tuple[str, ...] = EMBEDDING_FILES) -> None:
    """Every file of ``files`` into ``folder``, streamed, then checked against ``checksums``;
    ``EmbeddingsError`` for a missing one, ``ArtifactIntegrityError`` for an unrecorded or altered one."""
    for name in files:
        uri = store.uri(model_key(model_id, name))
        try:
            store.download(model_key(model_id, name), folder / name)
        except FileNotFoundError as exc:
            raise EmbeddingsError(f"model {model_id}: {uri} is missing") from exc
        verify_file(folder / name, checksums, name, uri)


def read_legacy(store: ArtifactStore, model_id: str, checksums) -> dict[str, np.ndarray]:
    """The four arrays of a verified legacy ``embeddings.npz``."""
    key = model_key(model_id, LEGACY_FILE)
    data = verify_bytes(store.get_bytes(key), checksums, LEGACY_FILE, store.uri(key))
    return arrays_from_npz(data, store.uri(key))


def read_embeddings(store: ArtifactStore, model_id: str, checksums) -> dict[str, np.ndarray]:
    """Every array of a published model, verified and read into memory (either format; ``item_norms``
    computed for npz)."""
    fmt = "npy" if store.exists(model_key(model_id, ITEM_NORMS)) else (
        "npz" if store.exists(model_key(model_id, LEGACY_FILE)) else None)
    if fmt is None:
        raise EmbeddingsError(f"model {model_id} has no published embeddings in {store.uri(model_key(model_id, ''))}")
    if fmt == "npz":
        arrays = read_legacy(store, model_id, checksums)
        return {**arrays, "item_norms": body_norms(arrays["item_vectors"])}
    with tempfile.TemporaryDirectory(prefix="recsys-embeddings-") as tmp:
        download_files(store, model_id, Path(tmp), checksums)
        return open_folder(Path(tmp), mmap_mode=None)

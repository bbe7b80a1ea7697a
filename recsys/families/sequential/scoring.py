"""Score the exported sequential model with numpy and onnxruntime only (never torch).

``load_runtime(folder)`` opens the ONNX encoder and memory-maps the item matrix;
``score_next(runtime, sequence, k, exclude)`` returns the ``k`` best next products for a
sequence of product ids (oldest first) as ``(product_ids, scores)``, best first.
``score_products`` scores given products only (a candidate set, or a whole catalogue in
the offline evaluation). ``add_products`` gives products unseen in training a vector from
their category and price band, so they can be recommended and read in a sequence.

``score_next`` runs its product over every item on one BLAS thread (threadpoolctl): the API
serves many requests at once, and a threaded matrix-vector product only spins on a busy machine.

A product id neither in the vocabulary nor added, an empty sequence or a bad ``k`` is a
``ValueError`` naming the problem.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
from threadpoolctl import ThreadpoolController

from recsys.families.sequential import config as C
from recsys.families.sequential.attributes import category_index, price_band_index


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


@dataclass(frozen=True)
class SequentialRuntime:
    session: ort.InferenceSession
    meta: dict  # config.json
    product_ids: np.ndarray  # int64, row order of item_vectors
    item_vectors: np.ndarray  # float32 (products x dim); memory-mapped as loaded
    item_categories: np.ndarray
    item_bands: np.ndarray
    category_vectors: np.ndarray
    band_vectors: np.ndarray
    known: int  # rows that are vocabulary products; rows after them were added (unknown to the encoder)
    rows: dict[int, int] = field(repr=False)  # product id -> row

    @property
    def max_len(self) -> int:
        return int(self.meta["config"]["max_len"])


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_runtime(folder: str | Path, threads: int = 1, mmap: bool = True) -> SequentialRuntime:
    """The runtime of an exported model folder (``recsys.families.sequential.export.export_model``)."""
    folder = Path(folder)
    if not (folder / C.CONFIG_FILE).is_file():
        raise ValueError(f"{folder} is not an exported sequential model (no {C.CONFIG_FILE})")
    meta = json.loads((folder / C.CONFIG_FILE).read_text())
    if meta.get("format_version") != C.FORMAT_VERSION:
        raise ValueError(f"{folder}: format version {meta.get('format_version')} != {C.FORMAT_VERSION}")

    def load(name: str) -> np.ndarray:
        return np.load(folder / name, mmap_mode="r" if mmap else None, allow_pickle=False)

    ids = np.asarray(load(C.PRODUCT_IDS_FILE), dtype=np.int64)
    return SequentialRuntime(_session(folder / C.ENCODER_FILE, threads), meta, ids, load(C.ITEM_VECTORS_FILE),
                             np.asarray(load(C.ITEM_CATEGORIES_FILE)), np.asarray(load(C.ITEM_BANDS_FILE)),
                             np.asarray(load(C.CATEGORY_VECTORS_FILE)), np.asarray(load(C.BAND_VECTORS_FILE)),
                             len(ids), {int(p): i for i, p in enumerate(ids)})


def add_products(runtime: SequentialRuntime, product_ids: Sequence[int], categories: Sequence[str | None],
                 prices: Sequence[float | None]) -> SequentialRuntime:
    """A runtime that also knows ``product_ids`` (new products), each as its attributes' vector."""
    ids = np.asarray(product_ids, dtype=np.int64)
    if not len(ids) == len(categories) == len(prices):
        raise ValueError("product_ids, categories and prices must have the same length")
    again = [int(p) for p in ids if int(p) in runtime.rows]
    if again or len(np.unique(ids)) != len(ids):
        raise ValueError(f"product id(s) already known or repeated: {again[:10] or 'repeated ids'}")
    cats = category_index(categories, runtime.meta["categories"])
    bands = price_band_index(np.array([np.nan if p is None else p for p in prices], dtype=np.float64))
    vectors = (runtime.category_vectors[cats] + runtime.band_vectors[bands]).astype(np.float32)
    start = len(runtime.product_ids)
    rows = dict(runtime.rows) | {int(p): start + i for i, p in enumerate(ids)}
    return replace(runtime, product_ids=np.r_[runtime.product_ids, ids],
                   item_vectors=np.vstack([runtime.item_vectors, vectors]),
                   item_categories=np.r_[runtime.item_categories, cats], item_bands=np.r_[runtime.item_bands, bands],
                   rows=rows)


def _rows(runtime: SequentialRuntime, product_ids: Iterable, what: str) -> np.ndarray:
    ids = list(product_ids)
    try:
        rows = [runtime.rows.get(int(p), -1) for p in ids]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: product ids must be integers, got {ids[:5]}") from exc
    unknown = [p for p, r in zip(ids, rows) if r < 0]
    if unknown:
        raise ValueError(f"{what}: {len(unknown)} product id(s) unknown to the model: {unknown[:10]}")
    return np.asarray(rows, dtype=np.int64)


def encode(runtime: SequentialRuntime, sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """The encoder's state (sequences x dim) for each sequence of product ids, oldest first."""
    n, length = len(sequences), runtime.max_len
    items, cats, bands = (np.zeros((n, length), dtype=np.int64) for _ in range(3))
    for i, sequence in enumerate(sequences):
        if len(sequence) == 0:
            raise ValueError("empty sequence: the sequential model needs at least one product")
        rows = _rows(runtime, sequence, "sequence")[-length:]
        tail = slice(length - len(rows), length)
        items[i, tail] = np.where(rows < runtime.known, rows + C.FIRST_ITEM, C.UNKNOWN)
        cats[i, tail], bands[i, tail] = runtime.item_categories[rows], runtime.item_bands[rows]
    feeds = dict(zip(runtime.meta["inputs"], (items, cats, bands)))
    return runtime.session.run([runtime.meta["output"]], feeds)[0]


def score_products(runtime: SequentialRuntime, sequences: Sequence[Sequence[int]],
                   product_ids: Sequence[int]) -> np.ndarray:
    """Scores (sequences x products) of the given products (a candidate set, a catalogue)."""
    rows = _rows(runtime, product_ids, "candidates")
    return encode(runtime, sequences) @ np.asarray(runtime.item_vectors[rows]).T


def score_next(runtime: SequentialRuntime, sequence: Sequence[int], k: int = 10,
               exclude: Iterable[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best next products after ``sequence`` among all known ones, minus ``exclude``
    (ids the model does not know are ignored there): ``(product_ids, scores)``, best first."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    state = encode(runtime, [sequence])[0]
    # one request, one BLAS thread: a threaded product over 100K x 64 spins on a busy machine
    # (bench/results/sequential_latency.md: 16-24 ms threaded vs 1.5 ms on one thread)
    with _blas().limit(limits=1, user_api="blas"):
        scores = runtime.item_vectors @ state
    drop = [runtime.rows[int(p)] for p in exclude if int(p) in runtime.rows]
    if drop:
        scores[drop] = -np.inf
    k = min(k, len(scores) - len(set(drop)))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")]
    return runtime.product_ids[top], scores[top]

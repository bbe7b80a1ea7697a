"""One API worker's embeddings, in a fresh process: load them the old or the new way, look users up and
score them, and report this process's memory from ``/proc/self``.

- ``old``: the previous version's loading: ``embeddings.npz`` read whole into the heap
  (``get_bytes`` + ``np.load``), ``{id: row}`` dicts for users and items, an L2-normalised copy
  of the item embeddings; a lookup is ``user_index.get(uid)``.
- ``new``: ``recsys.families.vectors.served.load_embeddings``: the node cache (download once), the
  ``.npy`` files memory-mapped read-only, ``np.searchsorted`` lookups.
Scoring is the same code for both (``ModelEmbeddings.score_user``).

``python -m bench.api_memory_worker --mode new --store DIR --model M --cache DIR`` prints one JSON
line (load and query figures, memory after each), then answers ``status`` on stdin with the memory
again (so a second worker can be measured while this one still holds its pages) until ``exit``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.families.vectors.served import ModelEmbeddings
from recsys.serving.model_cache import load_served, model_folder
from recsys.artifacts import LocalArtifactStore, model_key
from recsys.families.vectors.files import LEGACY_FILE, arrays_from_npz, body_norms

STATUS_FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")
ROLLUP_FIELDS = ("Pss", "Pss_Anon", "Pss_File")


def proc_memory() -> dict[str, int]:
    """This process's memory in bytes: ``/proc/self/status`` (VmRSS, VmHWM, RssAnon, RssFile, RssShmem)
    and ``/proc/self/smaps_rollup`` (Pss: shared pages divided among the processes that map them)."""
    out = {}
    for path, fields in (("/proc/self/status", STATUS_FIELDS), ("/proc/self/smaps_rollup", ROLLUP_FIELDS)):
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name in fields:
                out[name] = int(value.split()[0]) * 1024  # kB
    return out


@dataclass(frozen=True)
class OldLayout:
    """The previous API layout: arrays in the heap, dict id indexes, a normalised item copy."""

    emb: ModelEmbeddings
    user_index: dict[int, int]
    item_index: dict[int, int]
    item_unit: np.ndarray

    def user_vector(self, user_id: int) -> np.ndarray | None:
        i = self.user_index.get(user_id)
        return None if i is None else self.emb.user_vectors[i]


def load_old(store: LocalArtifactStore, model_id: str) -> OldLayout:
    arrays = arrays_from_npz(store.get_bytes(model_key(model_id, LEGACY_FILE)), LEGACY_FILE)
    emb = ModelEmbeddings(model_id=model_id, item_norms=body_norms(arrays["item_vectors"]), **arrays)
    body = emb.item_vectors[:, :-1]
    norms = np.linalg.norm(body, axis=1, keepdims=True)
    unit = np.divide(body, norms, out=np.zeros_like(body), where=norms > 0)
    return OldLayout(emb, {int(u): i for i, u in enumerate(emb.user_ids)},
                     {int(p): i for i, p in enumerate(emb.item_ids)}, unit)


def percentiles(seconds: list[float], scale: float) -> dict:
    arr = np.asarray(seconds) * scale
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)), "mean": float(arr.mean())}


def measure_queries(lookup, emb: ModelEmbeddings, users: np.ndarray, k: int, queries: int) -> dict:
    """Lookup alone (µs) of every id of ``users`` (distinct), then lookup + ``score_user`` (ms) of the first
    ``queries`` of them."""
    lookup_s = []
    for uid in (int(u) for u in users):
        start = time.perf_counter()
        lookup(uid)
        lookup_s.append(time.perf_counter() - start)
    score_s = []
    for uid in (int(u) for u in users[:queries]):
        start = time.perf_counter()
        top = emb.score_user(lookup(uid), k)
        score_s.append(time.perf_counter() - start)
        assert len(top) == k
    return {"lookup_us": percentiles(lookup_s, 1e6), "lookup_score_ms": percentiles(score_s, 1e3),
            "queries": queries, "lookups": len(users)}


def recorded_checksums(store: LocalArtifactStore, model_id: str) -> dict[str, str]:
    """What publish records in the registry for these files (the bench has no registry)."""
    from recsys.families.vectors.files import EMBEDDING_FILES

    return {name: store.sha256(model_key(model_id, name)) for name in EMBEDDING_FILES}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("old", "new"), required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    store = LocalArtifactStore(args.store)
    checksums = recorded_checksums(store, args.model) if args.mode == "new" else None  # the registry's record
    report = {"mode": args.mode, "memory_start": proc_memory()}
    start = time.perf_counter()
    if args.mode == "old":
        old = load_old(store, args.model)
        emb, lookup = old.emb, old.user_vector
    else:
        folder = model_folder(Path(args.cache), args.model)
        before = folder.stat().st_ino if folder.is_dir() else None
        emb = load_served(store, args.model, Path(args.cache), checksums)  # verified on download
        lookup = emb.user_vector
    report["load_seconds"] = time.perf_counter() - start
    if args.mode == "new":  # a download renames a new folder into place: the same inode means none was made
        report["cache_reused"] = before is not None and folder.stat().st_ino == before
    report["memory_loaded"] = proc_memory()
    rows = np.random.default_rng(args.seed).choice(len(emb.user_ids), args.lookups, replace=False)
    users = np.asarray(emb.user_ids[rows])  # reads only the pages of these ids, as lookups would
    report.update(measure_queries(lookup, emb, users, args.k, args.queries))
    report["memory_queried"] = proc_memory()
    print(json.dumps(report), flush=True)
    for line in sys.stdin:
        if line.strip() != "status":
            break
        print(json.dumps(proc_memory()), flush=True)


if __name__ == "__main__":
    main()

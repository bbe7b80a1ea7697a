"""API worker memory: the LIVE model's embeddings loaded the old way vs the new one, at 1M and 10M users.

For each size, synthetic embeddings of the production shape (``bench/vectors.py``; ids with gaps) are
published into a local artifact store both ways: the new ``.npy`` files (written block by block, as
publish does) and the old ``embeddings.npz`` (``np.savez_compressed``, as the previous publish did).
Then ``--repeats`` rounds, alternating old and new, of: a first worker process
(``bench/api_memory_worker.py``) loads the embeddings, looks up ``--lookups`` distinct random users and
scores ``--queries`` of them against every product (top 100); then a second worker process does the
same while the first still holds its pages; each reports its own memory from ``/proc/self`` (VmRSS,
RssAnon, RssFile, Pss) and the first reports again once the second is up. A new-mode round starts from
an empty node cache (the first worker downloads, the second reuses). A second old worker is skipped
when the machine lacks the memory for it (recorded).

``python -m bench.bench_api_memory [--users 1000000,10000000] [--products 100000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import vectors
from bench.common import REPO, log, machine, quick, ratio, summary, write_result
from recsys.artifacts import LocalArtifactStore, model_key
from recsys.families.vectors.files import EMBEDDING_FILES, LEGACY_FILE, write_side

MODES = ("old", "new")
HEADROOM = 1.25  # a second old worker starts only when available memory > its predicted peak x this


def publish_synthetic(store: LocalArtifactStore, model_id: str, users: int, products: int, dim: int,
                      seed: int) -> dict:
    """Both formats of one synthetic model in ``store``; returns the file sizes and how long each took."""
    folder = Path(store.uri(model_key(model_id, "")))
    folder.mkdir(parents=True, exist_ok=True)
    items = vectors.item_vectors(products, dim, seed)
    start = time.perf_counter()
    write_side(folder, "user", np.arange(users, dtype=np.int64) * 3 + 1,
               lambda a, b: vectors.user_vectors(b - a, dim, seed, offset=a), dim)
    write_side(folder, "item", np.arange(products, dtype=np.int64) * 7 + 5, lambda a, b: items[a:b], dim)
    npy_seconds = time.perf_counter() - start
    start = time.perf_counter()
    mapped = {name.removesuffix(".npy"): np.load(folder / name, mmap_mode="r") for name in EMBEDDING_FILES[:4]}
    np.savez_compressed(folder / LEGACY_FILE, **mapped)
    del mapped
    return {"npy_bytes": sum((folder / n).stat().st_size for n in EMBEDDING_FILES),
            "npz_bytes": (folder / LEGACY_FILE).stat().st_size,
            "npy_write_seconds": npy_seconds, "npz_write_seconds": time.perf_counter() - start}


class Worker:
    """``bench.api_memory_worker`` in a subprocess: its report, then its memory again on request."""

    def __init__(self, mode: str, store: Path, model_id: str, cache: Path, seed: int, args):
        cmd = [sys.executable, "-m", "bench.api_memory_worker", "--mode", mode, "--store", str(store),
               "--model", model_id, "--cache", str(cache), "--queries", str(args.queries),
               "--lookups", str(args.lookups), "--seed", str(seed)]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.report = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.proc.args[3:5]} exited with {self.proc.wait()}")
        return json.loads(line)

    def status(self) -> dict:
        self.proc.stdin.write("status\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("exit\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def available_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def one_round(mode: str, store: Path, model_id: str, cache: Path, args) -> dict:
    """A first worker, then a second one while the first holds its pages."""
    if mode == "new":
        shutil.rmtree(cache, ignore_errors=True)  # the first worker downloads
    first = Worker(mode, store, model_id, cache, 1, args)
    out = {"first": first.report, "second": None}
    try:
        peak = first.report["memory_queried"]["VmHWM"]
        if mode == "old" and available_bytes() < HEADROOM * peak:
            out["second_skipped"] = f"{available_bytes() / 2**30:.1f} GiB available, a second old worker peaks near " \
                                    f"{peak / 2**30:.1f} GiB"
            return out
        second = Worker(mode, store, model_id, cache, 2, args)
        try:
            out["second"], out["first_after_second"] = second.report, first.status()
        finally:
            second.close()
    finally:
        first.close()
    return out


def figures(report: dict) -> dict[str, float]:
    """The numbers of one worker's report that are summarised over rounds."""
    q, start = report["memory_queried"], report["memory_start"]["VmRSS"]
    return {"load_seconds": report["load_seconds"], "rss_loaded": report["memory_loaded"]["VmRSS"],
            "rss": q["VmRSS"], "rss_over_start": q["VmRSS"] - start, "anon": q["RssAnon"], "file": q["RssFile"],
            "pss": q["Pss"], "peak_rss": q["VmHWM"], "lookup_us_p50": report["lookup_us"]["p50"],
            "lookup_us_p99": report["lookup_us"]["p99"], "score_ms_p50": report["lookup_score_ms"]["p50"],
            "score_ms_p99": report["lookup_score_ms"]["p99"], "start_rss": start}


def summarise(rounds: list[dict]) -> dict:
    out = {}
    for role in ("first", "second"):
        runs = [figures(r[role]) for r in rounds if r.get(role)]
        out[role] = {k: summary([x[k] for x in runs]) for k in runs[0]} if runs else None
    pairs = [r for r in rounds if r.get("second")]
    if pairs:  # both workers up: their Pss adds up to what the pair really holds (shared pages counted once)
        out["first_pss_after_second"] = summary([r["first_after_second"]["Pss"] for r in pairs])
        out["node_pss_two_workers"] = summary([r["first_after_second"]["Pss"] + r["second"]["memory_queried"]["Pss"]
                                               for r in pairs])
    out["second_skipped"] = [r["second_skipped"] for r in rounds if r.get("second_skipped")]
    return out


def measure_size(users: int, args, root: Path, dim: int) -> dict:
    store, model_id = root / "artifacts", f"bench-{users}"
    files = publish_synthetic(LocalArtifactStore(store), model_id, users, args.products, dim, args.seed)
    log(f"{users} users: .npy {files['npy_bytes'] / 2**30:.2f} GiB in {files['npy_write_seconds']:.0f}s, "
        f".npz {files['npz_bytes'] / 2**30:.2f} GiB in {files['npz_write_seconds']:.0f}s")
    rounds: dict[str, list[dict]] = {m: [] for m in MODES}
    for i in range(args.repeats):
        for mode in MODES:
            rounds[mode].append(one_round(mode, store, model_id, root / "cache", args))
            f = figures(rounds[mode][-1]["first"])
            log(f"{users} users, {mode} round {i + 1}: RSS {f['rss'] / 2**20:.0f} MiB (anon {f['anon'] / 2**20:.0f}), "
                f"lookup+score p50 {f['score_ms_p50']:.2f} ms, load {f['load_seconds']:.1f}s")
    shutil.rmtree(store / "models" / model_id, ignore_errors=True)
    shutil.rmtree(root / "cache", ignore_errors=True)
    out = {"users": users, "products": args.products, "dim": dim, "files": files,
           **{m: summarise(rounds[m]) for m in MODES}, "rounds": rounds}
    out["ratio_new_to_old"] = {k: ratio(out["new"]["first"][k], out["old"]["first"][k])
                               for k in ("rss", "rss_over_start", "pss", "score_ms_p50", "lookup_us_p50")}
    return out


def per_unit(sizes: list[dict]) -> dict:
    """Resident bytes per user of a worker (slope between the two largest sizes), old and new."""
    if len(sizes) < 2:
        return {}
    a, b = sorted(sizes, key=lambda s: s["users"])[-2:]
    span = b["users"] - a["users"]
    return {m: {k: (b[m]["first"][k]["median"] - a[m]["first"][k]["median"]) / span for k in ("rss", "pss", "anon")}
            for m in MODES}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="100000,1000000" if quick() else "1000000,10000000")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--queries", type=int, default=500, help="lookup + score requests per worker")
    parser.add_argument("--lookups", type=int, default=10_000, help="distinct users looked up per worker")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"), help="where the files are written")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = machine()
    dim = vectors.production_dim()
    root = Path(tempfile.mkdtemp(prefix="recsys-bench-api-memory-", dir=args.tmp))
    try:
        sizes = [measure_size(int(n), args, root, dim) for n in args.users.split(",")]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    write_result("api_memory", {"machine": info, "dim": dim, "products": args.products, "queries": args.queries,
                                "lookups": args.lookups, "repeats": args.repeats, "k": 100, "sizes": sizes,
                                "bytes_per_user": per_unit(sizes)},
                 started, "python -m bench.bench_api_memory " + " ".join(argv or []))


if __name__ == "__main__":
    main()

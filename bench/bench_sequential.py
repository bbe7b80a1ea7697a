"""Sequential model: latency of scoring one session sequence against 100,000 products, in process and through the API.

A synthetic model of the production shape (SASRec, ``max_len`` 50, 64 dims, 2 blocks; untrained
weights: latency does not depend on their values) over ``--products`` products is exported with
``recsys.families.sequential.export`` and scored with ``recsys.families.sequential.scoring`` (onnxruntime, one
thread, the item matrix memory-mapped), as the API would. Measured alternately, per call:

Each step's wall time and the calling thread's CPU time (onnxruntime and, in ``score_next``, BLAS run
on that thread alone, so CPU time is the cost on an idle core on a busy shared machine):

- ``encoder``: the ONNX encoder alone (one sequence of ``--length`` products);
- ``score_next``: encoder + ``item_vectors @ state`` over every product + argpartition top-10
  (exact: nothing approximated, so its recall against exact scoring is 1 by construction);
- ``candidates``: encoder + the scores of ``--candidates`` products only (e.g. a cached list),
  with its recall@10 against the exact top 10 of the same sequences.

Then, through the API (``bench.sequential_api``, key ``api`` of the results): a shop of
``--products`` products with a LIVE synthetic sequential model, served by the real app in process;
``GET /recommendations`` timed for a cache hit (sequence unchanged: no model run) and right after a
``POST /events/click`` (the sequence changed: scored on the fly), the model's runs counted per call;
a LIVE hybrid model's cache hit on the same shop for reference (``--no-hybrid`` skips it).
``--part scoring`` or ``--part api`` measures one part and keeps the other's results in the file.

Writes ``bench/results/sequential_latency.json`` and ``.md`` (p50, p95, p99, the machine), rendered
by ``bench.report_sequential`` as section 6 of bench/README.md.

``python -m bench.bench_sequential [--part all|scoring|api] [--products 100000] [--api-users 150]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from bench.common import RESULTS_DIR, log, machine, percentiles, quick, write_result
from bench.report_sequential import markdown
from bench.sequential_synthetic import synthetic_runtime

K = 10


def measure(runtime, sequences: list[list[int]], candidates: int, seed: int) -> tuple[dict, float]:
    """Wall time and the calling thread's CPU time of each step (onnxruntime and BLAS run on that one
    thread, so CPU time is the cost on an idle core, whatever else the shared machine runs)."""
    from recsys.families.sequential.scoring import encode, score_next, score_products

    rng = np.random.default_rng(seed)
    ids = runtime.product_ids
    steps = ("encoder", "score_next", "candidates")
    wall, cpu = {name: [] for name in steps}, {name: [] for name in steps}
    recalls = []
    for sequence in sequences:
        pool = rng.choice(ids, size=candidates, replace=False)
        marks = [(time.perf_counter(), time.thread_time())]
        encode(runtime, [sequence])
        marks.append((time.perf_counter(), time.thread_time()))
        exact, _ = score_next(runtime, sequence, K)
        marks.append((time.perf_counter(), time.thread_time()))
        pool_scores = score_products(runtime, [sequence], pool)[0]
        best = pool[np.argpartition(-pool_scores, K - 1)[:K]]
        marks.append((time.perf_counter(), time.thread_time()))
        for i, name in enumerate(steps):
            wall[name].append(marks[i + 1][0] - marks[i][0])
            cpu[name].append(marks[i + 1][1] - marks[i][1])
        recalls.append(len(set(best.tolist()) & set(exact.tolist())) / K)
    out = {name: percentiles(wall[name]) | {"cpu_" + k: v for k, v in percentiles(cpu[name]).items() if k != "n"}
           for name in steps}
    return out, float(statistics.mean(recalls))


def scoring(args) -> dict:
    """The in-process scoring of one sequence: its latency per step and the model's shape."""
    import onnxruntime

    with tempfile.TemporaryDirectory(prefix="bench-sequential-") as tmp:
        log(f"exporting a synthetic model over {args.products:,} products")
        runtime = synthetic_runtime(args.products, f"{tmp}/model", args.seed)
        rng = np.random.default_rng(args.seed + 1)
        ids = runtime.product_ids
        sequences = [rng.choice(ids, size=args.length, replace=False).tolist() for _ in range(args.calls + 50)]
        measure(runtime, sequences[:50], args.candidates, args.seed)  # warm-up: page cache, session
        log(f"measuring {args.calls} calls")
        latency, recall = measure(runtime, sequences[50:], args.candidates, args.seed)
        cfg = runtime.meta["config"]
    for name, r in latency.items():
        log(f"{name}: p50 {r['p50_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms")
    return {"products": args.products, "length": args.length, "calls": args.calls, "warmup": 50,
            "candidates": args.candidates, "dim": cfg["dim"], "layers": cfg["layers"], "max_len": cfg["max_len"],
            "onnxruntime": onnxruntime.__version__, "latency": latency, "candidate_recall_at_10": recall}


def through_api(args, command: str) -> dict:
    """``bench.sequential_api`` at ``--products`` products, with its date, command and load averages."""
    from bench.sequential_api import run

    started, load = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
    log(f"API: a shop of {args.api_shop_users:,} users and {args.products:,} products, a LIVE synthetic "
        "sequential model")
    out = run(database=args.database, products=args.products, shop_users=args.api_shop_users, users=args.api_users,
              rounds=args.api_rounds, hybrid=args.hybrid, seed=args.seed)
    for name, r in out["calls"].items():
        log(f"API {name}: p50 {r['p50_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms "
            f"({r['n']} calls, encoder runs {r['encoder_runs']})")
    return {**out, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "command": command,
            "wall_seconds": round(time.perf_counter() - started, 1), "loadavg_start": load,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("all", "scoring", "api"), default="all",
                        help="what to measure; the other part's results already in the file are kept")
    parser.add_argument("--products", type=int, default=20_000 if quick() else 100_000)
    parser.add_argument("--length", type=int, default=20, help="products in the scored sequence")
    parser.add_argument("--calls", type=int, default=300 if quick() else 1000)
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--api-shop-users", type=int, default=1000 if quick() else 3000,
                        help="users of the synthetic shop the API serves")
    parser.add_argument("--api-users", type=int, default=50 if quick() else 150, help="users measured")
    parser.add_argument("--api-rounds", type=int, default=2, help="(hit, click, changed) rounds per user")
    parser.add_argument("--hybrid", action=argparse.BooleanOptionalAction, default=True,
                        help="also the cache hits of a LIVE hybrid model on the same shop (reference)")
    parser.add_argument("--database", default="sequential_api", help="the throw-away database recsys_bench_<name>")
    args = parser.parse_args(argv)
    command = " ".join(["python -m bench.bench_sequential", *(argv if argv is not None else sys.argv[1:])])
    path = RESULTS_DIR / "sequential_latency.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    if args.part == "api" and "latency" not in doc:
        parser.error(f"{path} has no scoring results: run --part scoring (or all) first")
    started = time.perf_counter()
    info = machine()
    fresh = scoring(args) if args.part in ("all", "scoring") else None
    api = through_api(args, command) if args.part in ("all", "api") else doc.get("api")
    if fresh is not None:
        write_result("sequential_latency", {**fresh, **({"api": api} if api else {}), "machine": info}, started,
                     command)
    else:
        path.write_text(json.dumps({**doc, "api": api}, indent=2) + "\n")
    (RESULTS_DIR / "sequential_latency.md").write_text(markdown(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

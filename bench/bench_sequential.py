"""Sequential model: in-process latency of scoring one session sequence against 100,000 products.

A synthetic model of the production shape (SASRec, ``max_len`` 50, 64 dims, 2 blocks; untrained
weights: latency does not depend on their values) over ``--products`` products is exported with
``recsys.sequential.export`` and scored with ``recsys.sequential.scoring`` (onnxruntime, one
thread, the item matrix memory-mapped), as the API would. Measured alternately, per call:

Each step's wall time and the calling thread's CPU time (onnxruntime and, in ``score_next``, BLAS run
on that thread alone, so CPU time is the cost on an idle core on a busy shared machine):

- ``encoder``: the ONNX encoder alone (one sequence of ``--length`` products);
- ``score_next``: encoder + ``item_vectors @ state`` over every product + argpartition top-10
  (exact: nothing approximated, so its recall against exact scoring is 1 by construction);
- ``candidates``: encoder + the scores of ``--candidates`` products only (e.g. a cached list),
  with its recall@10 against the exact top 10 of the same sequences.

Writes ``bench/results/sequential_latency.json`` and ``.md`` (median, p95, p99, the machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time

import numpy as np

from bench.common import RESULTS_DIR, log, machine, quick, write_result

K = 10


def synthetic_runtime(products: int, folder: str, seed: int = 0):
    import pandas as pd
    import torch

    from recsys.sequential.config import SequentialConfig
    from recsys.sequential.data import build_vocab
    from recsys.sequential.export import export_model
    from recsys.sequential.scoring import load_runtime
    from recsys.sequential.train import FittedSequential, new_model

    rng = np.random.default_rng(seed)
    ids = np.arange(1, products + 1)
    catalogue = pd.DataFrame({"product_id": ids, "category": [f"c{i}" for i in rng.integers(50, size=products)],
                              "price": rng.lognormal(2.0, 1.0, size=products)})
    config = dataclasses.replace(SequentialConfig(), seed=seed)
    torch.manual_seed(seed)
    vocab = build_vocab(ids, catalogue)
    model = new_model(vocab, config).eval()
    with torch.no_grad():  # spread the item vectors as training does (scores with a real spread, not ties)
        model.embed.ids.weight.normal_(0.0, 0.3)
    export_model(FittedSequential(model, vocab, config), folder)
    return load_runtime(folder, threads=1, mmap=True)


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "n": len(ms)}


def measure(runtime, sequences: list[list[int]], candidates: int, seed: int) -> tuple[dict, float]:
    """Wall time and the calling thread's CPU time of each step (onnxruntime and BLAS run on that one
    thread, so CPU time is the cost on an idle core, whatever else the shared machine runs)."""
    from recsys.sequential.scoring import encode, score_next, score_products

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


def markdown(doc: dict) -> str:
    m, rows = doc["machine"], doc["latency"]
    lines = [
        "# Sequential model: in-process scoring latency",
        "",
        f"`python -m bench.bench_sequential` ({doc['date']}): one sequence of {doc['length']} products, "
        f"{doc['products']:,} products, {doc['dim']} dims, SASRec {doc['layers']} blocks, max_len {doc['max_len']}, "
        f"onnxruntime {doc['onnxruntime']} on 1 thread, item matrix memory-mapped; {doc['calls']} calls after "
        f"{doc['warmup']} warm-up calls.",
        "",
        "| step | p50 ms | p95 ms | p99 ms | CPU p50 ms | CPU p95 ms |",
        "|---|---|---|---|---|---|",
    ]
    labels = {"encoder": "ONNX encoder alone", "score_next": "`score_next`: encoder + exact scores of every "
              "product + top 10", "candidates": f"encoder + {doc['candidates']} candidates + top 10"}
    for name, label in labels.items():
        r = rows[name]
        lines.append(f"| {label} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_p50_ms']:.2f} "
                     f"| {r['cpu_p95_ms']:.2f} |")
    lines += [
        "",
        f"`score_next` is exact (recall 1 against exact scoring by construction). Scoring only "
        f"{doc['candidates']} random candidates has recall@10 {doc['candidate_recall_at_10']:.3f} against the exact "
        "top 10 of the same sequences: a candidate set only helps when it already holds the good products "
        "(a cached list does; random ones do not).",
        "",
        "Wall times include the waits of a shared machine (other sessions' tests and runs); CPU times are the "
        "calling thread's (onnxruntime and BLAS run on it alone), i.e. the cost on an idle core.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}; load average "
        f"{m['loadavg_1_5_15']} at the start, {doc['loadavg_end']} at the end (the machine is shared: other "
        "sessions were running).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=20_000 if quick() else 100_000)
    parser.add_argument("--length", type=int, default=20, help="products in the scored sequence")
    parser.add_argument("--calls", type=int, default=300 if quick() else 1000)
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import onnxruntime

    started = time.perf_counter()
    info = machine()
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
    doc = {"products": args.products, "length": args.length, "calls": args.calls, "warmup": 50,
           "candidates": args.candidates, "dim": cfg["dim"], "layers": cfg["layers"], "max_len": cfg["max_len"],
           "onnxruntime": onnxruntime.__version__, "latency": latency, "candidate_recall_at_10": recall,
           "machine": info}
    write_result("sequential_latency", doc, started, "python -m bench.bench_sequential")
    doc["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    doc["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (RESULTS_DIR / "sequential_latency.md").write_text(markdown(doc))
    for name, r in latency.items():
        log(f"{name}: p50 {r['p50_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

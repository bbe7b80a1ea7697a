"""The sequential model's results as text: ``results/sequential_latency.md`` and section 6 of bench/README.md.

Both are rendered from ``results/sequential_latency.json`` by the same functions: the scoring in
process (``latency``, ``bench.bench_sequential``) and, when measured, the real-time path through the
API (``api``, ``bench.sequential_api``).
"""

from __future__ import annotations

from bench.report_format import num, sig, table

TARGET_P50_MS = 5.0  # issue 14: one scoring at 100,000 products, in process, p50
API_ROWS = (("hit", "hit: sequence unchanged (all)"),
            ("hit_answer", "hit sent from the cached final answer (`answer:{user}`)"),
            ("hit_list", "hit: the list the last re-score wrote, re-ranked"),
            ("changed", "**after a click: scored on the fly** (encoder + every product + write-back)"),
            ("hybrid_hit", "reference: hit of a LIVE hybrid model, same shop and users"))


def when(doc: dict) -> str:
    return doc["date"][:16].replace("T", " ") + " UTC"


def scoring_part(doc: dict) -> str:
    rows = doc["latency"]
    labels = {"encoder": "ONNX encoder alone", "score_next": "`score_next`: encoder + exact scores of every "
              "product + top 10", "candidates": f"encoder + {doc['candidates']} candidates + top 10"}
    body = [[label, f"{rows[n]['p50_ms']:.2f}", f"{rows[n]['p95_ms']:.2f}", f"{rows[n]['p99_ms']:.2f}",
             f"{rows[n]['cpu_p50_ms']:.2f}", f"{rows[n]['cpu_p95_ms']:.2f}"] for n, label in labels.items()]
    return "\n\n".join([
        f"`{doc['command']}` ({when(doc)}): one sequence of {doc['length']} products, {num(doc['products'])} "
        f"products, {doc['dim']} dims, SASRec {doc['layers']} blocks, max_len {doc['max_len']}, onnxruntime "
        f"{doc['onnxruntime']} on 1 thread, item matrix memory-mapped; {doc['calls']} calls after {doc['warmup']} "
        "warm-up calls.",
        table(["step", "p50 ms", "p95 ms", "p99 ms", "CPU p50 ms", "CPU p95 ms"], body),
        f"`score_next` is exact (recall 1 against exact scoring by construction). Scoring only {doc['candidates']} "
        f"random candidates has recall@10 {doc['candidate_recall_at_10']:.3f} against the exact top 10 of the same "
        "sequences: a candidate set only helps when it already holds the good products (a cached list does; "
        "random ones do not).",
        "Wall times include the waits of a shared machine (other sessions' tests and runs); CPU times are the "
        "calling thread's (onnxruntime and BLAS run on it alone), i.e. the cost on an idle core."])


def target_line(doc: dict) -> str:
    """Issue 14's target against one scoring in process and against the whole re-score through the API."""
    scoring, api = doc["latency"]["score_next"], doc["api"]
    changed = api["calls"]["changed"]

    def verdict(p50: float) -> str:
        return "met" if p50 <= TARGET_P50_MS else "NOT met"

    return (f"Issue 14's target, p50 <= {sig(TARGET_P50_MS)} ms in process for one scoring at 100,000 products: "
            f"`score_next` alone at {num(doc['products'])} products p50 {scoring['p50_ms']:.2f} ms "
            f"({verdict(scoring['p50_ms'])}); the whole re-score request through the API (encoder, every product, "
            f"candidates, re-ranking, the list written back) at {num(api['products'])} products p50 "
            f"{changed['p50_ms']:.2f} ms wall, {changed['cpu_p50_ms']:.2f} ms CPU ({verdict(changed['p50_ms'])}).")


def api_part(doc: dict) -> str:
    """The API measurement's text and table ("" when it was not measured)."""
    api = doc.get("api")
    if not api:
        return ""
    calls = api["calls"]
    rows = [[label, f"{c['p50_ms']:.2f}", f"{c['p95_ms']:.2f}", f"{c['p99_ms']:.2f}", f"{c['cpu_p50_ms']:.2f}",
             f"{c['cpu_p95_ms']:.2f}", c["n"],
             f"{c['encoder_runs']['min']}–{c['encoder_runs']['max']} ({c['encoder_runs']['total']} in all)",
             c["model_loads"], c["from_cached_answer"]]
            for name, label in API_ROWS if (c := calls.get(name))]
    shop = api["shop"]
    return "\n\n".join([
        "### Through the API: a cache hit, and the re-score after a click",
        f"`{api['command']}` ({when(api)}): the real app (`create_app`, lifespan entered, the model's files verified "
        f"against the registry's checksums) over a throw-away PostgreSQL database and Redis; {num(api['products'])} "
        f"products; synthetic: {api['synthetic']} ({num(shop['users'])} users, {num(shop['events'])} events). "
        f"{api['users']} users with at least {api['personalized_min_events']} events and a precomputed list, "
        f"{api['rounds']} rounds of: `GET /recommendations` with the session's sequence unchanged (hit), "
        "`POST /events/click` through the app on another product (not timed), `GET /recommendations` again "
        f"(changed). Timed: the route's call `{api['route']}` in process (no HTTP, no rate limiter), wall and the "
        "calling thread's CPU (the event loop, onnxruntime and BLAS all run on it); the encoder runs "
        "(`scoring.encode`), model loads (`scoring.load_runtime`) and answers sent from `answer:{user}` are "
        "counted per call, and a call of the wrong kind stops the benchmark.",
        table(["call", "p50 ms", "p95 ms", "p99 ms", "CPU p50 ms", "CPU p95 ms", "calls", "encoder runs per call",
               "model loads", "from cached answer"], rows),
        target_line(doc),
        "The first round's hits are sent from the final answers precompute wrote (the sessions existed); after a "
        "re-score the API writes the new list back, so the first hit after it re-ranks that list (the second "
        "round's hits here); since de24cf3 that hit also writes the final answer, and the hits after it are sent "
        "from it.",
        first_calls(calls)])


def first_calls(calls: dict) -> str:
    """The first timed call of each app next to its kind's p50 ("" for results without it)."""
    firsts = [(label, c) for name, label in (("hit", "sequential hit"), ("hybrid_hit", "hybrid hit"))
              if "first_ms" in (c := calls.get(name) or {})]
    if not firsts:
        return ""
    text = "; ".join(f"{label} {sig(c['first_ms'])} ms (p50 {sig(c['p50_ms'])}, slowest {sig(c['max_ms'])})"
                     for label, c in firsts)
    return (f"The first timed call of each app: {text}; the percentiles hardly show it. Its first-time work was "
            "not broken down; one piece is the digest of the serving context over every product "
            "(`ServingState.answer_context`, worked out once per catalog snapshot, and the background refresh takes "
            "a new snapshot every `RECSYS_API_REFRESH_SECONDS`).")


def sequential(doc: dict) -> str:
    """Section 6 of bench/README.md."""
    parts = ["## 6. Sequential model: scoring latency in process and through the API", scoring_part(doc)]
    if api_part(doc):
        parts.append(api_part(doc))
    parts.append("Written by `bench/bench_sequential.py` (+ `sequential_api.py`, `sequential_synthetic.py`): "
                 "[results/sequential_latency.md](results/sequential_latency.md).")
    return "\n\n".join(parts)


def sequential_headline(doc: dict) -> str:
    s = doc["latency"]["score_next"]
    line = (f"- **Sequential model** (one session sequence of {doc['length']} products, {num(doc['products'])} "
            f"products, in process, exact top 10): `score_next` p50 {s['p50_ms']:.2f} ms, p95 {s['p95_ms']:.2f} ms "
            f"wall (CPU {s['cpu_p50_ms']:.2f} / {s['cpu_p95_ms']:.2f} ms); the ONNX encoder alone "
            f"{doc['latency']['encoder']['p50_ms']:.2f} ms")
    api = doc.get("api")
    if api:
        hit, changed = api["calls"]["hit"], api["calls"]["changed"]
        line += (f". Through the API ({num(api['products'])} products, `respond` in process): cache hit p50 "
                 f"{hit['p50_ms']:.2f} / p99 {hit['p99_ms']:.2f} ms (no model run), after a click (re-scored) p50 "
                 f"{changed['p50_ms']:.2f} / p95 {changed['p95_ms']:.2f} / p99 {changed['p99_ms']:.2f} ms")
    return line + " (section 6)."


def markdown(doc: dict) -> str:
    """``results/sequential_latency.md``."""
    m = doc["machine"]
    parts = ["# Sequential model: scoring latency in process and through the API", scoring_part(doc)]
    if api_part(doc):
        parts.append(api_part(doc))
    parts.append(f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}; load "
                 f"average {m['loadavg_1_5_15']} at the start, {doc['loadavg_end']} at the end (the machine is "
                 "shared: other sessions were running).")
    return "\n\n".join(parts) + "\n"

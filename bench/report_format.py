"""Formatting helpers of the benchmark reports: numbers, summaries and Markdown tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.common import RESULTS_DIR

OWN_RESULTS = ("precompute", "shards", "ann", "serving", "api_memory", "ingest", "training", "nightly", "selection",
               "scale_simulation", "sequential_latency", "serving_filtered")


def load_results(folder: Path = RESULTS_DIR) -> dict[str, dict]:
    """The benchmarks' own result files that exist (others' files in the folder are left out)."""
    out = {}
    for name in OWN_RESULTS:
        path = folder / f"{name}.json"
        if path.exists():
            out[name] = json.loads(path.read_text())
    return out


def num(x, digits: int = 0) -> str:
    if x is None:
        return "–"
    if isinstance(x, (int, float)) and abs(x) >= 1000 and digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def sig(x, n: int = 3) -> str:
    """``x`` with ``n`` significant digits (thousands separated)."""
    if x is None:
        return "–"
    if x == 0:
        return "0"
    from math import floor, log10

    digits = max(0, n - 1 - floor(log10(abs(x))))
    return f"{x:,.{digits}f}"


def med(s: dict | None, n: int = 3) -> str:
    """A summary as ``median (min–max)``."""
    if not s:
        return "–"
    return f"{sig(s['median'], n)} ({sig(s['min'], n)}–{sig(s['max'], n)})"


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def gib(x) -> str:
    return "–" if x is None else f"{x / 2**30:,.1f} GiB"


def short_function(name: str) -> str:
    """A profiler function name without the interpreter's install prefix."""
    return re.sub(r"^.*/lib/python3\.\d+/", "", name)

"""Shared helpers of the benchmarks: repeated timing, summary statistics, the machine, results files.

Every figure is a median over several runs with its spread (min, max and the
relative spread ``(max - min) / median``); a figure and its reference are run
alternately in the same process run, so that load from other users of the
machine hits both alike. Results go to ``bench/results/<name>.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# the benchmark APIs (127.0.0.1 only) know one key; its token bucket is checked on every request (its
# Redis round trip is part of what is measured) but sized so that the load is never throttled
BENCH_API_KEY = "bench-key-0123456789abcdef"
API_KEY_HEADERS = {"X-API-Key": BENCH_API_KEY}
API_ENV = {"RECSYS_API_KEYS": f"bench:{BENCH_API_KEY}", "RECSYS_RATE_LIMIT_PER_SECOND": "1000000",
           "RECSYS_RATE_LIMIT_BURST": "1000000"}


def quick() -> bool:
    """``BENCH_QUICK=1``: reduced sizes that run in a few minutes."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def summary(values: Sequence[float]) -> dict:
    """Median, min, max and relative spread of repeated measurements."""
    if not values:
        raise ValueError("no measurements to summarise")
    vals = [float(v) for v in values]
    med = statistics.median(vals)
    return {"median": med, "min": min(vals), "max": max(vals), "n": len(vals),
            "spread": (max(vals) - min(vals)) / med if med else None, "runs": vals}


def percentiles(seconds: Sequence[float]) -> dict:
    """p50, p95, p99 and mean in milliseconds of single-call timings (in seconds), and their number."""
    import numpy as np

    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "n": len(ms)}


def ratio(a: dict, b: dict) -> float | None:
    """Ratio of two summaries' medians."""
    return a["median"] / b["median"] if b["median"] else None


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def alternate(calls: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each named measurement ``repeats`` times, interleaved (a, b, a, b, ...)."""
    out: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            out[name].append(float(call()))
    return out


def blas_info() -> list[dict]:
    """The BLAS libraries numpy loaded and the kernel (architecture) OpenBLAS picked."""
    import numpy as np
    from threadpoolctl import threadpool_info

    np.ones((4, 4)) @ np.ones((4, 4))  # make sure BLAS is loaded
    keep = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{k: lib.get(k) for k in keep} for lib in threadpool_info() if lib.get("user_api") == "blas"]


def reference_env() -> dict[str, str]:
    """The environment of the numpy reference: OpenBLAS core-type overrides removed (they slow numpy)."""
    return {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}


def cpu_busy_percent(seconds: float = 1.0) -> float:
    """Whole-machine CPU use over ``seconds``: the load other users put on it when we are idle."""
    import psutil

    return float(psutil.cpu_percent(interval=seconds))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return sorted(f for f in flags if f.startswith(("avx", "fma", "sse4")))
    except OSError:
        pass
    return []


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> dict:
    """What the numbers were measured on, and how busy it was when this was called."""
    import psutil

    return {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "cpu_flags": _cpu_flags(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "memory_available_gib": round(psutil.virtual_memory().available / 2**30, 1),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpu_busy_percent_before": cpu_busy_percent(1.0),
        "python": sys.version.split()[0], "platform": platform.platform(),
        "openblas_env": {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ},
        "git_commit": _git_commit(),
    }


def write_result(name: str, payload: dict, started: float, command: str) -> Path:
    """``bench/results/<name>.json`` with the payload, the machine, the date and the command."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "command": command, "quick": quick(), "wall_seconds": round(time.perf_counter() - started, 1),
           "loadavg_end": [round(x, 2) for x in os.getloadavg()], **payload}
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=_jsonable) + "\n")
    print(f"wrote {path.relative_to(REPO)} ({doc['wall_seconds']}s)", flush=True)
    return path


def _jsonable(obj):
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:
        pass
    if isinstance(obj, (dt.date, dt.datetime, Path)):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def log(msg: str) -> None:
    print(f"[{dt.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)

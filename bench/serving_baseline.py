"""The serving benchmark's baseline: another checkout's API measured in the same run, and its report.

``python -m bench.bench_serving --baseline PATH`` (``BENCH_SERVING_ARGS="--baseline PATH" make bench``)
starts the API of the source tree at PATH too (a git worktree of an older commit, say), with the
chosen server settings and the same shop, Redis and users. Its cache hits are measured alternately
with this tree's, the trivial endpoint and the rest of the side-by-side targets, one request alone,
and in process (``bench.serving_profile`` run inside that tree). The report sets the two side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.common import API_ENV
from bench.report_format import med, sig, table

_PROFILE = ("import json, sys; from bench.serving_profile import profile_hits; "
            "print('PROFILEJSON', json.dumps(profile_hits(*sys.argv[1:4], [int(u) for u in sys.argv[4].split(',')])))")


def git_commit(source: Path) -> str | None:
    out = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


def profile_in(source: Path, database_url: str, redis_url: str, artifact_uri: str, ids: list[int]) -> dict:
    """``serving_profile.profile_hits`` run by the code of ``source`` (its own process)."""
    out = subprocess.run([sys.executable, "-c", _PROFILE, database_url, redis_url, artifact_uri,
                          ",".join(map(str, ids))], cwd=source,
                         # the bench's API key in the environment: a tree with production defaults needs one
                         env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **API_ENV},
                         capture_output=True, text=True, timeout=600)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("PROFILEJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"baseline profile failed: {out.stderr.strip()[-2000:]}")
    return json.loads(line.split(" ", 1)[1])


# --- report ---------------------------------------------------------------------------------
def _label(r: dict) -> str:
    return f"commit {r['baseline'].get('git_commit') or '?'}"


def _pairs(r: dict) -> list[tuple[str, object, object, str, str]]:
    """(metric, before, after, before text, after text) of a run with a baseline."""
    sbs, c = r["side_by_side"], r["connections"]
    base, hit = sbs["hit_baseline"], sbs["hit"]
    rows = [(f"cache-hit req/s at {c} connections", base["rps"], hit["rps"])]
    rows += [(f"cache-hit {p} ms at {c} connections", base[f"{p}_ms"], hit[f"{p}_ms"]) for p in ("p50", "p95", "p99")]
    out = [(name, b["median"], a["median"], med(b), med(a)) for name, b, a in rows]
    ratios = (sbs["ratio_baseline_to_trivial"], sbs["ratio_hit_to_trivial"])
    out.append(("cache hit / trivial endpoint (same run)", *ratios, sig(ratios[0]), sig(ratios[1])))
    seq = (r["sequential"]["hit_sequential_baseline"]["p50_ms"], r["sequential"]["hit_sequential"]["p50_ms"])
    out.append(("one request alone, p50 ms", *seq, sig(seq[0]), sig(seq[1])))
    ms = (r["baseline"]["profile_hit"]["mean_ms_per_call_unprofiled"],
          (r.get("profile_hit") or {}).get("mean_ms_per_call_unprofiled"))
    out.append(("route call in process, µs (`respond`; before: `recommend`)", ms[0] * 1e3, ms[1] * 1e3, sig(ms[0] * 1e3), sig(ms[1] * 1e3)))
    return out


def before_after(r: dict) -> str:
    """The table of the baseline (before) and this tree (after), or "" without a baseline."""
    if "hit_baseline" not in r["side_by_side"]:
        return ""
    rows = [[name, bt, at, sig(a / b) if a and b else "–"] for name, b, a, bt, at in _pairs(r)]
    trivial = r["side_by_side"]["trivial"]["rps"]
    return "\n\n".join([
        "### Before and after: the baseline's API in the same run",
        f"Before: the API of {_label(r)} (`{r['baseline']['source']}`, `recsys/api` + `recsys/serving` sources "
        f"{r['baseline']['api_source']['sha256_16']}); after: this tree. Same shop, Redis, users and server "
        f"settings; the side-by-side runs alternate between the two, the trivial endpoint ({med(trivial)} req/s) "
        "and the other targets.",
        table(["", "before", "after", "after / before"], rows)])


def change_finding(r: dict) -> str:
    """One line of findings comparing this tree with the baseline, or "" without one."""
    if "hit_baseline" not in r["side_by_side"]:
        return ""
    p = {name: f"{sig(b)} -> {sig(a)}" for name, b, a, _, _ in _pairs(r)}
    c = r["connections"]
    lat = " / ".join(p[f"cache-hit {q} ms at {c} connections"] for q in ("p50", "p95", "p99"))
    return (f"- Against the API of {_label(r)} measured alternately in the same run: cache hit "
            f"{p[f'cache-hit req/s at {c} connections']} req/s, p50 / p95 / p99 {lat} ms at {c} connections, "
            f"cache hit / trivial endpoint {p['cache hit / trivial endpoint (same run)']}, the route call in process "
            f"{p['route call in process, µs (`respond`; before: `recommend`)']} µs per call (table at the end of section 1).")

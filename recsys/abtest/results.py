"""A/B results: per-arm counts, the CTR z-test, the sample-size gate, the winner, the decision.

``summarize`` is pure (per-arm counts in, JSON-able dict out); ``compute_results`` has the
database attribute and aggregate one test's impressions and events (``store.outcome_counts``,
the rules of ``recsys.abtest.attribution``); ``update_results`` writes them to ``ab_tests``
(never replacing newer results with older ones, so backfills are harmless, nor a closed
test's final ones); ``finalize_test`` closes a test once (a compare-and-set on RUNNING under
the row lock) and decides in the same transaction: a losing treatment is archived, a winning one
is to be released (decision ``release``) while the test's control is still LIVE (a model promoted
during the test is never replaced by one it was not compared with) and while it is not ARCHIVED.
``release_winner`` then makes it LIVE through the one release path (``recsys.pipeline.release.make_live``:
its lists are precomputed before the registry switches, under the same checks), once (a compare-and-set
on the decision under the row lock), and records ``promoted`` or ``blocked``. ``run_interval`` is what the
hourly DAG ``recsys_ab_results`` runs; its last task releases the winners it found.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from sqlalchemy import Connection, Engine

from recsys import registry
from recsys.abtest import store
from recsys.abtest.request_ids import RequestIdSigner
from recsys.abtest.stats import ArmCounts, compare_ctr, design_effect_of_sums, two_proportion_ztest
from recsys.constants import (
    AB_COMPLETED, AB_RUNNING, ARM_CONTROL, ARM_TREATMENT, ARMS, STATUS_LIVE,
)
from recsys.db.merch_rules import rules_live_during
from recsys.settings import DEFAULTS, Settings

log = logging.getLogger(__name__)
ATTRIBUTION_SKEW_MS = 30_000  # a client clock this far behind the server still attributes
SERIES_STEPS_MS = (10_000, 60_000, 300_000, 900_000, 3_600_000, 3 * 3_600_000, 6 * 3_600_000, 86_400_000)
MAX_POINTS = 48
KEPT_KEYS = ("config", "planned_end_at", "decision")  # results keys that survive a recomputation
ACTION_BLOCKED = "blocked"  # the treatment won, but its control was no longer LIVE or it was archived: nothing promoted
ACTION_RELEASE, ACTION_RELEASING, ACTION_PROMOTED = "release", "releasing", "promoted"  # a winner's way to LIVE


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def judging_rules(settings: Settings) -> dict:
    """The rules a test is judged by, fixed when it starts."""
    return {"alpha": settings.ab_alpha, "power": settings.ab_power, "mde": settings.ab_min_detectable_effect,
            "attribution_window_seconds": settings.ab_attribution_window_seconds}


def _arm_summary(totals: dict | None) -> dict:
    t = totals or {**dict.fromkeys(store.ARM_COUNTS, 0), "revenue": 0.0}  # an arm without impressions
    users, n, clicked, buyers, revenue = t["users"], t["impressions"], t["clicked"], t["buyers"], t["revenue"]
    return {"users": users, "impressions": n, "clicked_impressions": clicked, "clicks": t["clicks"],
            "ctr": clicked / n if n else None, "purchases": t["purchases"], "buyers": buyers,
            "conversion": buyers / users if users else None, "revenue": round(revenue, 2),
            "revenue_per_user": revenue / users if users else None,
            "design_effect": design_effect_of_sums(users, clicked, n, t["xx"], t["xn"], t["nn"])}


def series_step(start_ms: int, end_ms: int) -> int:
    """The step of the time series of ``[start_ms, end_ms)``: at most ``MAX_POINTS`` points."""
    span_ms = max(end_ms - start_ms, 1)
    return next((s for s in SERIES_STEPS_MS if span_ms / s <= MAX_POINTS), SERIES_STEPS_MS[-1])


def time_series(steps: dict, start_ms: int, end_ms: int) -> dict:
    """Cumulative CTR and conversion per arm at the end of each step of ``[start_ms, end_ms)``, from the
    counts of each step (``store.outcome_counts``: bucket ``(timestamp - start_ms) // step``)."""
    step = series_step(start_ms, end_ms)
    ends = list(range(start_ms + step, end_ms, step)) + [end_ms]
    last = len(ends) - 1  # the last point also counts whatever is past the last whole step
    per_point = {arm: [dict.fromkeys(store.STEP_COUNTS, 0) for _ in ends] for arm in ARMS}
    for arm in ARMS:
        for bucket, counts in steps.get(arm, {}).items():
            into = per_point[arm][min(bucket, last)]
            for name in store.STEP_COUNTS:
                into[name] += counts[name]
    points, total = [], {arm: dict.fromkeys(store.STEP_COUNTS, 0) for arm in ARMS}
    for j, t in enumerate(ends):
        point = {"t": t}
        for arm in ARMS:
            c = total[arm]
            for name in store.STEP_COUNTS:
                c[name] += per_point[arm][j][name]
            point[arm] = {"impressions": c["impressions"],
                          "ctr": c["clicked"] / c["impressions"] if c["impressions"] else None,
                          "conversion": c["buyers"] / c["users"] if c["users"] else None}
        points.append(point)
    return {"step_ms": step, "points": points}


def summarize(counts: dict, *, treatment_fraction: float, config: dict, start_ms: int, end_ms: int) -> dict:
    """The results of one test from its aggregated outcomes (``store.outcome_counts``; pure)."""
    arms = {arm: _arm_summary(counts["arms"].get(arm)) for arm in ARMS}
    c, t = arms[ARM_CONTROL], arms[ARM_TREATMENT]
    ctr_test = compare_ctr(ArmCounts(c["clicked_impressions"], c["impressions"], c["design_effect"]),
                           ArmCounts(t["clicked_impressions"], t["impressions"], t["design_effect"]),
                           alpha=config["alpha"], mde=config["mde"], power=config["power"],
                           ratio=treatment_fraction / (1 - treatment_fraction))
    conv = two_proportion_ztest(c["buyers"], c["users"], t["buyers"], t["users"])
    every_arm = counts["arms"].values()  # impressions without an arm count as attributed too
    return {"arms": arms, "ctr_test": ctr_test, "conversion_test": {"z": conv.z, "pvalue": conv.pvalue},
            "winner": ctr_test["winner"], "num_users": int(c["users"] + t["users"]),
            "attributed": {"clicks": sum(a["clicks"] for a in every_arm),
                           "purchases": sum(a["purchases"] for a in every_arm), "events": counts["events"]},
            "series": time_series(counts["steps"], start_ms, end_ms)}


def compute_results(engine: Engine, test_id: int, as_of: dt.datetime | None = None,
                    settings: Settings = DEFAULTS) -> dict:
    """Results of a test over ``[start_at, min(as_of, end_at))`` (``as_of`` defaults to now), aggregated
    by the database (``store.outcome_counts``): no impression is read into this process."""
    test = store.get_test(engine, test_id)
    config = (test.get("results") or {}).get("config") or judging_rules(settings)
    cutoff = min(as_of or _now(), test["end_at"])
    start_ms, end_ms = _ms(test["start_at"]), max(_ms(cutoff), _ms(test["start_at"]) + 1)
    counts = store.outcome_counts(engine, test_id, start_ms, end_ms,
                                  window_ms=int(config["attribution_window_seconds"]) * 1000,
                                  skew_ms=ATTRIBUTION_SKEW_MS, step_ms=series_step(start_ms, end_ms),
                                  trusted=RequestIdSigner(settings.request_id_secret).verify)
    out = summarize(counts, treatment_fraction=test["treatment_fraction"], config=config, start_ms=start_ms,
                    end_ms=end_ms)
    return {"test_id": test_id, "as_of": cutoff.isoformat(), "computed_at": _now().isoformat(),
            "config": config, "merch_rules": rules_live_during(engine, test["start_at"], cutoff), **out}


def _merged(test: dict, fresh: dict) -> dict:
    old = test.get("results") or {}
    return {**{k: old[k] for k in KEPT_KEYS if k in old}, **fresh}


def update_results(engine: Engine, test_id: int, as_of: dt.datetime | None = None,
                   settings: Settings = DEFAULTS) -> dict:
    """Compute and store a running test's results unless newer ones are stored; returns the stored ones.

    Written under the test's row lock while it is RUNNING: a test closed meanwhile keeps its final
    results and decision (the fresh ones are dropped)."""
    fresh = compute_results(engine, test_id, as_of, settings)
    with engine.begin() as conn:
        test = store.lock_running(conn, test_id)
        if test is not None:
            stored_as_of = (test.get("results") or {}).get("as_of")
            if stored_as_of and dt.datetime.fromisoformat(stored_as_of) > dt.datetime.fromisoformat(fresh["as_of"]):
                return test["results"]
            results = _merged(test, fresh)
            store.save_results(conn, test_id, results)
            return results
    return store.get_test(engine, test_id).get("results") or {}


def decide_outcome(conn: Connection, test: dict, results: dict, auto_promote: bool) -> dict:
    """Promote a winning treatment, archive a losing one, keep an inconclusive one (registry, in the
    transaction of ``conn`` that closes the test)."""
    tid, treatment, control = test["test_id"], test["treatment_model_id"], test["control_model_id"]
    arms, p = results["arms"], results["ctr_test"]["pvalue"]
    summary = (f"CTR treatment {arms[ARM_TREATMENT]['ctr'] or 0:.4f} vs control {arms[ARM_CONTROL]['ctr'] or 0:.4f}, "
               f"p={p:.3g}")
    if treatment == control:
        return {"action": "none", "reason": f"A/A test {tid}: both arms serve {treatment}; {summary}"}
    winner = results["winner"]
    if winner == ARM_TREATMENT and not auto_promote:
        return {"action": "none", "reason": f"A/B test {tid}: treatment won ({summary}); auto-promotion is off"}
    if winner == ARM_TREATMENT:
        reason = f"A/B test {tid}: treatment won against {control} ({summary})"
        why_not = registry.why_not_promotable(conn, treatment, expected_live=control)
        if why_not:  # a newer model was promoted during the test (keep it), or the treatment was archived
            return _blocked(tid, treatment, control, f"{reason}, but {why_not}: nothing promoted")
        return {"action": ACTION_RELEASE, "model_id": treatment, "expected_live": control, "reason": reason}
    if winner == ARM_CONTROL and registry.get_model(conn, treatment).status != STATUS_LIVE:
        reason = f"A/B test {tid}: lost against {control} ({summary})"
        registry.archive(conn, treatment, reason=reason)
        return {"action": "archived", "model_id": treatment, "reason": reason}
    return {"action": "none", "reason": f"A/B test {tid}: {winner} ({summary}); {treatment} is left as it is"}


def _blocked(test_id: int, treatment: str, control: str, reason: str) -> dict:
    """The decision when the winner may not be promoted; on-call is told (ERROR line in the alerts'
    JSON form, and ``recsys_ab_promotion_blocked`` from the pipeline exporter)."""
    alert = {"event": "recsys_alert", "kind": "ab_promotion_blocked", "severity": "warning", "test_id": test_id,
             "treatment_model_id": treatment, "control_model_id": control, "reason": reason}
    log.error(json.dumps(alert))
    return {"action": ACTION_BLOCKED, "model_id": treatment, "reason": reason}


def finalize_test(engine: Engine, test_id: int, *, status: str = AB_COMPLETED, now: dt.datetime | None = None,
                  settings: Settings = DEFAULTS) -> dict:
    """Close a running test: final results up to its end (or ``now`` when stopped early), then the decision.

    A compare-and-set on ``status = 'RUNNING'`` under the test's row lock (``store.lock_running``): of
    closers racing (``/stop``, the hourly run, ``close_expired``), one decides, promotes or archives and
    closes in one transaction; the others find it closed. Closing a closed test changes nothing and
    returns it.
    """
    test = store.get_test(engine, test_id)
    if test["status"] != AB_RUNNING:
        return test
    end = min(now or _now(), test["end_at"])
    fresh = compute_results(engine, test_id, end, settings)  # read only: computed before taking the lock
    with engine.begin() as conn:
        test = store.lock_running(conn, test_id)
        if test is not None:
            results = _merged(test, fresh)
            results.setdefault("planned_end_at", test["end_at"].isoformat())
            results["decision"] = decide_outcome(conn, test, results, settings.ab_auto_promote)
            store.save_results(conn, test_id, results, status=status, end_at=end)
    if test is not None:
        log.info("A/B test %s %s: winner %s, %s", test_id, status, results["winner"], results["decision"]["reason"])
    return store.get_test(engine, test_id)


def run_interval(engine: Engine, start: dt.datetime, end: dt.datetime, settings: Settings = DEFAULTS) -> dict:
    """One hourly run: results as of ``end`` for the tests of ``[start, end)``; close the ones that ended."""
    out = []
    for test in store.tests_overlapping(engine, start, end):
        if test["status"] != AB_RUNNING:
            continue
        if test["end_at"] <= end:
            row = finalize_test(engine, test["test_id"], status=AB_COMPLETED, now=end, settings=settings)
            results = row["results"]
        else:
            results = update_results(engine, test["test_id"], as_of=end, settings=settings)
        out.append({"test_id": test["test_id"], "winner": results.get("winner"),
                    "pvalue": (results.get("ctr_test") or {}).get("pvalue"),
                    "decision": (results.get("decision") or {}).get("action")})
    return {"start": start.isoformat(), "end": end.isoformat(), "tests": out,
            "promoted": [t["test_id"] for t in out if t["decision"] == ACTION_RELEASE]}


def _claim(engine: Engine, test_id: int) -> dict | None:
    """The winner's decision, moved from ``release`` to ``releasing`` under the test's row lock (None when it
    is not waiting to be released: another releaser took it, or there is nothing to release)."""
    with engine.begin() as conn:
        test = store.lock_test(conn, test_id)
        decision = ((test or {}).get("results") or {}).get("decision") or {}
        if decision.get("action") != ACTION_RELEASE:
            return None
        results = {**test["results"], "decision": {**decision, "action": ACTION_RELEASING}}
        store.save_results(conn, test_id, results)
        return decision


def _settle(engine: Engine, test_id: int, decision: dict) -> None:
    with engine.begin() as conn:
        test = store.lock_test(conn, test_id)
        store.save_results(conn, test_id, {**test["results"], "decision": decision})


def release_winner(engine: Engine, artifacts, redis, test_id: int, settings: Settings) -> dict:
    """Make a closed test's winning treatment LIVE through ``make_live`` (lists first, then the switch, only
    while its control is LIVE and it is not ARCHIVED), once; the decision becomes ``promoted`` or
    ``blocked``. A failure of the release (a precompute that dies) puts the decision back to ``release``:
    the next hourly run tries again."""
    from recsys.pipeline.release import make_live

    decision = _claim(engine, test_id)
    if decision is None:
        return {"test_id": test_id, "action": None}
    treatment, control = decision["model_id"], decision["expected_live"]
    try:
        out = make_live(engine, artifacts, redis, treatment, decision["reason"], settings=settings,
                        expected_live=control, allow_archived=False)
    except (registry.LiveChangedError, registry.ArchivedModelError) as exc:
        settled = _blocked(test_id, treatment, control, f"{decision['reason']}, but {exc}: nothing promoted")
    except Exception:
        _settle(engine, test_id, decision)  # back to "release": retried by the next run
        raise
    else:
        settled = {"action": ACTION_PROMOTED, "model_id": treatment,
                   "previous_live_model_id": out["previous_live_model_id"], "reason": decision["reason"]}
    _settle(engine, test_id, settled)
    log.info("A/B test %s: %s %s", test_id, settled["action"], treatment)
    return {"test_id": test_id, **settled}

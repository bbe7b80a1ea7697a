"""The nightly drift steps: where the artifact store, the database and the pure drift cores meet.

``drift_report`` (after validate): the processed day's events (the partition extract wrote) against
the ``RECSYS_DRIFT_REFERENCE_DAYS`` days before it. ``output_drift`` (after evaluate): the new
model's lists against the LIVE model's for a seeded sample of active users, both made exactly as
precompute makes them (scores, purchased products dropped, trending boost, re-ranking).

Each writes to keys derived from the day (a re-run overwrites), logs the HTML report's URI,
records its step in ``pipeline_runs`` (the key figures there feed the Prometheus exporter) and
returns a small dict for XCom:

- ``drift/date=D/report.html`` and ``report.json``: the data-drift report;
- ``drift/date=D/profile.json``: the day's profile, reused when D is a later day's reference;
- ``drift/date=D/output.html`` and ``output.json``: the model-output report.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import pandas as pd
from sqlalchemy import Engine, select

from recsys.artifacts import ArtifactStore, partition_key, read_parquet
from recsys.constants import COL_ITEM, COL_USER, DEFAULT_K
from recsys.db.models import Product, User, UserEvent
from recsys.drift.data import add_profiles, compare_profiles, day_profile
from recsys.drift.output import compare_outputs
from recsys.drift.render import data_report_html, output_report_html
from recsys.pipeline.steps import recording, step
from recsys.settings import DEFAULTS, Settings
from recsys.timeutil import day_bounds_ms

log = logging.getLogger(__name__)

KIND = "drift"
PROFILE_VERSION = 1  # a cached profile of another version is recomputed


class DriftError(ValueError):
    """A drift report cannot be made (no events on the day, no active users)."""


def _check_day(day) -> None:
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise TypeError(f"day must be a datetime.date, got {day!r}")


def _put(store: ArtifactStore, day: dt.date, name: str, text: str) -> tuple[str, str]:
    key = partition_key(KIND, day, name)
    return key, store.put_bytes(key, text.encode())


# --- data drift -------------------------------------------------------------------------
def load_day_events(engine: Engine, store: ArtifactStore, day: dt.date) -> pd.DataFrame:
    """The day's extracted partition; the ``user_events`` rows of the day when it was never extracted."""
    from recsys.pipeline.extract import EVENTS_FILE, EVENTS_KIND, read_day_events

    key = partition_key(EVENTS_KIND, day, EVENTS_FILE)
    return read_parquet(store, key) if store.exists(key) else read_day_events(engine, day)


def _day_users(engine: Engine, day: dt.date) -> pd.DataFrame:
    start, end = day_bounds_ms(day)
    e, u = UserEvent, User
    ids = select(e.user_id).where(e.timestamp >= start, e.timestamp < end).distinct().scalar_subquery()
    with engine.connect() as conn:
        rows = conn.execute(select(u.user_id, u.device_type, u.country).where(u.user_id.in_(ids))).all()
    return pd.DataFrame(rows, columns=[COL_USER, "device_type", "country"])


def _products(engine: Engine) -> pd.DataFrame:
    p = Product
    with engine.connect() as conn:
        rows = conn.execute(select(p.product_id, p.category, p.price, p.created_at)).all()
    return pd.DataFrame(rows, columns=[COL_ITEM, "category", "price", "created_at"])


def _profile(engine: Engine, store: ArtifactStore, day: dt.date, products: pd.DataFrame, settings: Settings,
             cached: bool) -> dict:
    key = partition_key(KIND, day, "profile.json")
    if cached and store.exists(key):
        profile = json.loads(store.get_bytes(key))
        if profile.get("version") == PROFILE_VERSION:
            return profile
    events = load_day_events(engine, store, day)
    profile = day_profile(events, _day_users(engine, day), products, day, settings.new_product_days)
    return {"version": PROFILE_VERSION, "day": day.isoformat(), **profile}


def build_data_report(engine: Engine, store: ArtifactStore, day: dt.date, settings: Settings) -> tuple[dict, dict]:
    """The report of ``day`` and the day's profile (nothing written)."""
    products = _products(engine)
    current = _profile(engine, store, day, products, settings, cached=False)
    if current["events"] == 0:
        raise DriftError(f"no events on {day}: nothing to report on (was the day extracted?)")
    days = [day - dt.timedelta(days=n) for n in range(settings.drift_reference_days, 0, -1)]
    profiles = [_profile(engine, store, d, products, settings, cached=True) for d in days]
    reference = add_profiles(profiles)
    features = compare_profiles(current, reference, settings.drift_psi_threshold)
    report = {
        "day": day.isoformat(),
        "events": current["events"],
        "reference": {"days": len(days), "first": days[0].isoformat(), "last": days[-1].isoformat(),
                      "events": reference["events"], "days_with_events": sum(p["events"] > 0 for p in profiles)},
        "psi_threshold": settings.drift_psi_threshold,
        "drifted": [f["feature"] for f in features if f["drifted"]],
        "features": features,
    }
    return report, current


def drift_report(engine: Engine, store: ArtifactStore, day: dt.date, settings: Settings = DEFAULTS) -> dict:
    """Write the data-drift report of ``day``; returns its keys/URIs and the key figures."""
    _check_day(day)
    with recording(engine, day, step("data_drift")) as record:
        report, profile = build_data_report(engine, store, day, settings)
        json_key, json_uri = _put(store, day, "report.json", json.dumps(report, indent=1, allow_nan=False))
        html_key, html_uri = _put(store, day, "report.html", data_report_html(report))
        _put(store, day, "profile.json", json.dumps(profile))
        summary = {
            "day": day.isoformat(), "html_key": html_key, "html_uri": html_uri, "json_key": json_key,
            "json_uri": json_uri, "events": report["events"], "reference_events": report["reference"]["events"],
            "psi_threshold": report["psi_threshold"], "drifted": report["drifted"],
            "psi": {f["feature"]: f["psi"] for f in report["features"]},
        }
        record.details = summary
    log.info("data drift report of %s: %s (drifted: %s)", day, html_uri, ", ".join(report["drifted"]) or "none")
    return summary


# --- model output drift -----------------------------------------------------------------
def _sample_lists(engine: Engine, day: dt.date, scorer, users: pd.DataFrame) -> dict[int, list[int]]:
    from recsys.pipeline.precompute import recommend_block

    out: dict[int, list[int]] = {}
    size = scorer.settings.precompute_block_size
    for start in range(0, len(users), size):
        block = users.iloc[start : start + size]
        _, lists = recommend_block(engine, day, scorer, block)
        out.update((uid, [c.product_id for c in items]) for uid, items in zip(block[COL_USER].tolist(), lists))
    return out


def build_output_report(engine: Engine, store: ArtifactStore, day: dt.date, new_model_id: str,
                        live_model_id: str, settings: Settings, k: int = DEFAULT_K) -> dict:
    """Both models' lists for the seeded user sample, compared (nothing written)."""
    from recsys.pipeline.precompute import Scorer, active_users

    new = Scorer.load(engine, store, day, new_model_id, settings)
    live = Scorer.load(engine, store, day, live_model_id, settings)
    users = active_users(engine, day, settings.active_days, settings)
    if users.empty:
        raise DriftError(f"no users active in the {settings.active_days} days up to {day}: no lists to compare")
    sample = users.sample(n=min(settings.drift_sample_users, len(users)), random_state=settings.seed)
    sample = sample.sort_values(COL_USER).reset_index(drop=True)
    popularity = dict(zip(new.products[COL_ITEM].tolist(), new.products["popularity"].tolist()))
    result = compare_outputs(_sample_lists(engine, day, new, sample), _sample_lists(engine, day, live, sample),
                             popularity, len(new.products), k, settings.drift_gini_jump, settings.drift_coverage_drop)
    return {"day": day.isoformat(), "new_model_id": new_model_id, "live_model_id": live_model_id, **result}


def _live_model_id(engine: Engine) -> str | None:
    from recsys import registry

    live = registry.get_live(engine)
    return live.model_id if live else None


def output_drift(engine: Engine, store: ArtifactStore, day: dt.date, new_model_id: str,
                 live_model_id: str | None = None, settings: Settings = DEFAULTS) -> dict:
    """Write the output-drift report of ``new_model_id`` against the LIVE model (or ``live_model_id``).

    Without a LIVE model to compare with (the first model), the step is recorded SKIPPED and
    ``{"compared": False, "reason": ...}`` is returned.
    """
    _check_day(day)
    with recording(engine, day, step("output_drift")) as record:
        live_model_id = live_model_id or _live_model_id(engine)
        if live_model_id is None or live_model_id == new_model_id:
            reason = "no other LIVE model to compare with"
            record.skip(reason, new_model_id=new_model_id)
            log.info("output drift of %s: skipped (%s)", new_model_id, reason)
            return {"day": day.isoformat(), "new_model_id": new_model_id, "compared": False, "reason": reason}
        report = build_output_report(engine, store, day, new_model_id, live_model_id, settings)
        json_key, json_uri = _put(store, day, "output.json", json.dumps(report, indent=1, allow_nan=False))
        html_key, html_uri = _put(store, day, "output.html", output_report_html(report))
        new, live = report["new"], report["live"]
        summary = {
            "day": day.isoformat(), "compared": True, "new_model_id": new_model_id, "live_model_id": live_model_id,
            "html_key": html_key, "html_uri": html_uri, "json_key": json_key, "json_uri": json_uri,
            "users": new["users"], "overlap_jaccard": report["overlap_jaccard"],
            "gini_change": report["gini_change"], "gini_jump_threshold": report["gini_jump_threshold"],
            "coverage_ratio": report["coverage_ratio"], "coverage_drop_threshold": report["coverage_drop_threshold"],
            "concentration_jump": report["concentration_jump"], "jump_reasons": report["jump_reasons"],
            **{f"{name}_{role}": m[name] for role, m in (("new", new), ("live", live))
               for name in ("gini", "coverage", "avg_popularity", "top_share")},
        }
        record.details = summary
    log.info("output drift of %s vs LIVE %s on %s: %s (Gini %+.3f, coverage x%s%s)", new_model_id, live_model_id,
             day, html_uri, report["gini_change"], report["coverage_ratio"],
             f", CONCENTRATION JUMP ({', '.join(report['jump_reasons'])})" if report["concentration_jump"] else "")
    return summary

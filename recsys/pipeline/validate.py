"""Nightly step 2: validate the extracted day with Great Expectations.

The day's partition is checked (required columns, event types, timestamps inside
the day, prices, known user/product ids, volume against the trailing week); users
with too many events inside any 60 seconds are listed as likely bots (a warning). The full
report is always saved to ``validation/date=<day>/report.json``; a failing day
raises ``DataValidationError`` whose message is a readable summary.

Great Expectations is imported and its (ephemeral) context built inside
``validate_day`` only: importing it is slow, and a DAG must not pay for it at parse time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math

import numpy as np
import pandas as pd
from sqlalchemy import Engine, bindparam, text

from recsys.artifacts import ArtifactStore, partition_key, read_parquet
from recsys.constants import (
    COL_EVENT_ID,
    COL_EVENT_TYPE,
    COL_ITEM,
    COL_PRICE,
    COL_TIMESTAMP,
    COL_USER,
    EVENT_COLUMNS,
    EVENT_TYPES,
    IMPRESSION,
    MS_PER_DAY,
    PURCHASE,
)
from recsys.pipeline.extract import EVENTS_FILE, EVENTS_KIND
from recsys.pipeline.steps import recording, step
from recsys.settings import DEFAULTS, Settings
from recsys.timeutil import day_bounds_ms

log = logging.getLogger(__name__)

REPORT_KIND = "validation"
REPORT_FILE = "report.json"
REQUIRED_COLUMNS = (COL_EVENT_ID, COL_USER, COL_ITEM, COL_EVENT_TYPE, COL_TIMESTAMP)
TRAILING_DAYS = 7
USER_KNOWN = "user_known"
PRODUCT_KNOWN = "product_known"
SAMPLE_SIZE = 5
_PARTIAL_ROWS = 20  # unexpected rows GX returns per check, from which SAMPLE_SIZE distinct values are shown
_ID_CHUNK = 5_000


class DataValidationError(ValueError):
    """The day's events failed validation; the message summarises why, ``report`` has it all."""

    def __init__(self, message: str, report: dict | None = None, report_uri: str | None = None):
        super().__init__(message)
        self.report = report or {}
        self.report_uri = report_uri


def flag_bots(df: pd.DataFrame, max_per_minute: int) -> list[dict]:
    """Users with more than ``max_per_minute`` events inside any 60-second window.

    Returns ``[{"user_id", "max_events_per_minute"}]``, most active first.
    """
    rows = df[[COL_USER, COL_TIMESTAMP]].dropna()
    if rows.empty:
        return []
    users = rows[COL_USER].to_numpy(dtype=np.int64)
    ts = rows[COL_TIMESTAMP].to_numpy(dtype=np.int64)
    codes, uniques = pd.factorize(users, sort=True)
    offset = ts - ts.min()
    stride = int(offset.max()) + 60_001  # keeps each user's keys in their own block
    keys = np.sort(codes.astype(np.int64) * stride + offset)
    # events in [t, t + 60 s) for every event t of the same user
    in_window = np.searchsorted(keys, keys + 60_000, side="left") - np.arange(len(keys))
    per_user = pd.Series(in_window).groupby(keys // stride).max()
    flagged = per_user[per_user > max_per_minute].sort_values(ascending=False, kind="stable")
    return [{"user_id": int(uniques[c]), "max_events_per_minute": int(n)} for c, n in flagged.items()]


def volume_bounds(mean: float, band: float) -> tuple[int, int]:
    """Row-count bounds ``[mean * (1 - band), mean * (1 + band)]``, rounded inwards
    (outwards when no whole count lies inside, as can happen for tiny means)."""
    low, high = mean * (1 - band), mean * (1 + band)
    if math.ceil(low) <= math.floor(high):
        return math.ceil(low), math.floor(high)
    return math.floor(low), math.ceil(high)


def _plain(value):
    """A JSON-safe version of a value from pandas/numpy/GX (NaN and NA become None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def known_ids(engine: Engine, table: str, column: str, ids) -> set[int]:
    """Which of ``ids`` exist in ``table.column`` (queried in chunks of the day's distinct ids)."""
    wanted = sorted({int(i) for i in pd.Series(ids).dropna().unique()})
    query = text(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IN :ids').bindparams(
        bindparam("ids", expanding=True)
    )
    found: set[int] = set()
    with engine.connect() as conn:
        for start in range(0, len(wanted), _ID_CHUNK):
            found.update(int(r[0]) for r in conn.execute(query, {"ids": wanted[start : start + _ID_CHUNK]}))
    return found


def add_known_flags(engine: Engine, df: pd.DataFrame) -> pd.DataFrame:
    """Add ``user_known``/``product_known`` (null ids count as known: the not-null checks own them)."""
    out = df.copy()
    for flag, table, col in ((USER_KNOWN, "users", COL_USER), (PRODUCT_KNOWN, "products", COL_ITEM)):
        if col not in out.columns:
            continue
        known = known_ids(engine, table, col, out[col])
        out[flag] = (out[col].isna() | out[col].isin(known)).astype(bool)
    return out


def trailing_volume(engine: Engine, day: dt.date, days: int = TRAILING_DAYS) -> dict | None:
    """Mean daily count of behaviour events (impressions excluded: they follow traffic, not
    shoppers, and start the day A/B logging is switched on) over the ``days`` days before
    ``day`` that have events (None: no history)."""
    start, _ = day_bounds_ms(day)
    low = start - days * MS_PER_DAY
    query = text(
        f'SELECT ("timestamp" - :low) / {MS_PER_DAY} AS day_index, COUNT(*) AS n FROM user_events '
        'WHERE "timestamp" >= :low AND "timestamp" < :start AND event_type <> :impression GROUP BY 1'
    )
    with engine.connect() as conn:
        counts = [int(r.n) for r in conn.execute(query, {"low": low, "start": start, "impression": IMPRESSION})]
    if not counts:
        return None
    return {"days_with_events": len(counts), "window_days": days, "mean": sum(counts) / len(counts)}


def _meta(check: str, description: str, sample_column: str | None = None) -> dict:
    """What the report calls a check, and which column shows its samples when values say little."""
    return {"check": check, "description": description, "sample_column": sample_column}


def _row_checks(E, day: dt.date) -> list:
    start, end = day_bounds_ms(day)
    not_null = [
        E.ExpectColumnValuesToNotBeNull(column=c, meta=_meta(f"{c}_not_null", f"{c} is never null", COL_EVENT_ID))
        for c in REQUIRED_COLUMNS
    ]
    return [
        E.ExpectTableColumnsToMatchSet(column_set=list(EVENT_COLUMNS), exact_match=False,
                                       meta=_meta("columns_present", "the partition has every event column")),
        *not_null,
        E.ExpectColumnValuesToBeInSet(column=COL_EVENT_TYPE, value_set=list(EVENT_TYPES), meta=_meta(
            "event_type_known", f"event_type is one of {', '.join(EVENT_TYPES)}")),
        E.ExpectColumnValuesToBeBetween(column=COL_TIMESTAMP, min_value=start, max_value=end, strict_max=True,
                                        meta=_meta("timestamp_in_day", f"timestamp in [{start}, {end}) ms, {day} UTC")),
        E.ExpectColumnValuesToBeBetween(column=COL_PRICE, min_value=0,
                                        meta=_meta("price_non_negative", "price is >= 0 when present")),
        E.ExpectColumnValuesToNotBeNull(column=COL_PRICE, row_condition=f'{COL_EVENT_TYPE}=="{PURCHASE}"',
                                        condition_parser="pandas",
                                        meta=_meta("purchase_has_price", "every PURCHASE has a price", COL_EVENT_ID)),
        E.ExpectColumnValuesToBeInSet(column=PRODUCT_KNOWN, value_set=[True], meta=_meta(
            "product_id_known", "every product_id is in the products table", COL_ITEM)),
        E.ExpectColumnValuesToBeInSet(column=USER_KNOWN, value_set=[True], meta=_meta(
            "user_id_known", "every user_id is in the users table", COL_USER)),
    ]


def _volume_check(E, volume: dict, band: float):
    # the band is on behaviour events; the day's impressions are added to both bounds
    low, high = volume_bounds(volume["mean"], band)
    extra = int(volume.get("impressions_today", 0))
    low, high = low + extra, high + extra
    description = (f"row count within +-{band:.0%} of the trailing mean {volume['mean']:.1f} "
                   f"({volume['days_with_events']} of the previous {volume['window_days']} days had events; "
                   f"plus {extra} impressions today, which the band does not count)")
    return E.ExpectTableRowCountToBeBetween(min_value=low, max_value=high,
                                            meta=_meta("volume_in_trailing_band", description))


def run_checks(df: pd.DataFrame, day: dt.date, volume: dict | None, band: float) -> list:
    """Run the day's expectations on ``df`` in an ephemeral GX context; one GX result per check."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas("events")
        .add_dataframe_asset(f"events_{day.isoformat()}")
        .add_batch_definition_whole_dataframe("whole_day")
    )
    checks = _row_checks(gx.expectations, day)
    if volume is not None:
        checks.append(_volume_check(gx.expectations, volume, band))
    suite = context.suites.add(gx.ExpectationSuite(name="events_day", expectations=checks))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="events_day", data=batch, suite=suite))
    result = definition.run(
        batch_parameters={"dataframe": df},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": _PARTIAL_ROWS},
    )
    return list(result.results)


def _samples(result, df: pd.DataFrame) -> list:
    """A few distinct unexpected values (of ``meta.sample_column`` when the checked values say little)."""
    details = result.result or {}
    sample_column = (result.expectation_config.meta or {}).get("sample_column")
    if sample_column and sample_column in df.columns:
        index = [i for i in details.get("partial_unexpected_index_list") or [] if i in df.index]
        values = df.loc[index, sample_column].tolist()
    else:
        values = details.get("partial_unexpected_list") or []
    distinct = list(dict.fromkeys(_plain(v) for v in values))
    return distinct[:SAMPLE_SIZE]


def summarise(result, df: pd.DataFrame) -> dict:
    """One check of the report: what was expected, whether it held, counts and sample values."""
    config = result.expectation_config
    meta = config.meta or {}
    details = result.result or {}
    errors = [e.get("exception_message") for e in _exceptions(result.exception_info) if e.get("raised_exception")]
    return _plain({
        "check": meta.get("check", config.type),
        "description": meta.get("description", ""),
        "expectation": config.type,
        "kwargs": {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format")},
        "success": bool(result.success),
        "element_count": details.get("element_count"),
        "unexpected_count": details.get("unexpected_count"),
        "unexpected_percent": _percent(details.get("unexpected_count"), details.get("element_count")),
        "observed_value": details.get("observed_value"),
        "details": details.get("details"),
        "sample_of": meta.get("sample_column") or config.kwargs.get("column"),
        "sample_unexpected": _samples(result, df),
        "error": "; ".join(e for e in errors if e) or None,
    })


def _percent(part, whole) -> float | None:
    """Share of all checked rows (GX's own percentage leaves null values out)."""
    return None if part is None or not whole else 100.0 * part / whole


def _exceptions(info) -> list[dict]:
    """GX nests exception info per metric when a metric fails, flat otherwise."""
    if not info:
        return []
    if "raised_exception" in info:
        return [info]
    return [v for v in info.values() if isinstance(v, dict)]


def _failure_line(check: dict) -> str:
    line = f"  - {check['check']} ({check['expectation']}): expected {check['description']}"
    if check["error"]:
        return f"{line}; could not be checked: {check['error']}"
    if check["unexpected_count"] is not None:
        line += f"; {check['unexpected_count']:,} of {check['element_count']:,} rows unexpected"
        line += f" ({check['unexpected_percent'] or 0:.2f}%)"
    elif check["observed_value"] is not None:
        line += f"; observed {check['observed_value']}"
        if "min_value" in check["kwargs"]:
            line += f" (allowed {check['kwargs']['min_value']}..{check['kwargs']['max_value']})"
    if check["sample_unexpected"]:
        line += f"; sample {check['sample_of'] or 'values'}: {check['sample_unexpected']}"
    return line


def failure_message(report: dict, report_uri: str) -> str:
    """The readable summary raised with ``DataValidationError``."""
    failed = [c for c in report["checks"] if not c["success"]]
    lines = [
        f"Data validation failed for {report['day']}: {len(failed)} of {len(report['checks'])} checks failed "
        f"on {report['rows']:,} rows.",
        *(_failure_line(c) for c in failed),
    ]
    if report["flagged_bots"]:
        ids = [b["user_id"] for b in report["flagged_bots"][:SAMPLE_SIZE]]
        lines.append(f"  (warning) {len(report['flagged_bots'])} bot-like users flagged, e.g. {ids}")
    lines.append(f"Full report: {report_uri}")
    return "\n".join(lines)


def build_report(day: dt.date, df: pd.DataFrame, checks: list[dict], volume: dict | None,
                 bots: list[dict], settings: Settings) -> dict:
    skipped = [] if volume is not None else [
        {"check": "volume_in_trailing_band",
         "reason": f"no events in the previous {TRAILING_DAYS} days: no trailing history to compare with"}
    ]
    return {
        "day": day.isoformat(),
        "success": all(c["success"] for c in checks),
        "rows": int(len(df)),
        "checks": checks,
        "skipped": skipped,
        "volume": {"trailing": volume, "band": settings.volume_band},
        "flagged_bots": bots,
        "bot_events_per_minute": settings.bot_events_per_minute,
    }


def validate_day(engine: Engine, store: ArtifactStore, day: dt.date, settings: Settings = DEFAULTS) -> dict:
    """Validate the extracted events of ``day``; save the report; raise ``DataValidationError`` on failure.

    Returns ``{"success", "report_key", "report_uri", "rows", "failed", "flagged_bots"}``.
    """
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise TypeError(f"day must be a datetime.date, got {day!r}")
    events_key = partition_key(EVENTS_KIND, day, EVENTS_FILE)
    with recording(engine, day, step("validate")) as record:
        if not store.exists(events_key):
            raise FileNotFoundError(f"no extracted events for {day} at {store.uri(events_key)}: run extract first")
        df = add_known_flags(engine, read_parquet(store, events_key))
        volume = trailing_volume(engine, day)
        if volume is not None and COL_EVENT_TYPE in df.columns:
            volume["impressions_today"] = int((df[COL_EVENT_TYPE] == IMPRESSION).sum())
        checks = [summarise(r, df) for r in run_checks(df, day, volume, settings.volume_band)]
        bots = flag_bots(df, settings.bot_events_per_minute) if {COL_USER, COL_TIMESTAMP} <= set(df.columns) else []
        report = build_report(day, df, checks, volume, bots, settings)
        report_key = partition_key(REPORT_KIND, day, REPORT_FILE)
        report_uri = store.put_bytes(report_key, json.dumps(report, indent=2, allow_nan=False).encode())
        failed = [c["check"] for c in checks if not c["success"]]
        result = {
            "success": report["success"], "report_key": report_key, "report_uri": report_uri,
            "rows": report["rows"], "failed": failed, "flagged_bots": [b["user_id"] for b in bots],
        }
        record.details = {**result, "volume_check_skipped": volume is None}
        if not report["success"]:  # recorded FAILED with the failed checks
            raise DataValidationError(failure_message(report, report_uri), report=report, report_uri=report_uri)
    log.info("validated %d events of %s: %d bot-like users flagged; report %s", len(df), day, len(bots), report_uri)
    return result

"""What a loader refuses in an event log: bad files (``EventLogError``) and bad rows (``LoadReport``).

A file that cannot be read as the log it claims to be (not Parquet, not CSV, a missing
column, an id column with blanks) is an ``EventLogError`` naming the file: nothing of it
is loaded. A readable file may still hold rows that must not reach training; they are
rejected one by one and counted by reason in the ``LoadReport``:

- ``unknown_event_type``: an event type that is not ours nor a known synonym;
- ``negative_price``: a price below zero;
- ``future_timestamp``: later than the loader's clock plus ``skew_ms`` (the
  ``RECSYS_EVENT_CLOCK_SKEW_SECONDS`` the API also allows).

The unit of numeric timestamps is detected per file from the median magnitude
(``epoch_unit``): below 1e11 seconds (1e11 s is the year 5138), below 1e14 milliseconds,
below 1e17 microseconds, else nanoseconds. Any date between 1973 and 5138 is told apart
this way; ``--timestamp-unit`` forces it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

TIMESTAMP_UNITS = {"s": 1_000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}  # unit -> factor to milliseconds
UNIT_BOUNDS = (("s", 1e11), ("ms", 1e14), ("us", 1e17))  # median |value| below the bound: that unit
EXAMPLES = 5


class EventLogError(ValueError):
    """An event log that cannot be read as a whole: the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), " ".join(str(problem).split())[:500]
        super().__init__(f"{self.path}: {self.problem}")


def epoch_unit(numbers: np.ndarray) -> str:
    """The unit of epoch numbers, from their median magnitude (see the module docstring)."""
    magnitude = float(np.median(np.abs(numbers))) if len(numbers) else 0.0
    return next((unit for unit, bound in UNIT_BOUNDS if magnitude < bound), "ns")


def epoch_to_ms(numbers: np.ndarray, unit: str) -> np.ndarray:
    if unit not in TIMESTAMP_UNITS:
        raise ValueError(f"timestamp unit must be one of {sorted(TIMESTAMP_UNITS)}, not {unit!r}")
    return np.round(np.asarray(numbers, dtype=np.float64) * TIMESTAMP_UNITS[unit]).astype(np.int64)


@dataclass
class LoadReport:
    """Rows read and rejected (by reason, with a few examples) while reading one event log."""

    path: str
    rows: int = 0  # rows the format keeps (e.g. REES46 remove_from_cart rows are not events)
    rows_rejected: int = 0  # a row rejected for two reasons counts once here, in both reasons below
    rejected: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list] = field(default_factory=dict)
    timestamp_unit: str | None = None

    def reject(self, reason: str, mask: pd.Series, values: pd.Series) -> None:
        n = int(mask.sum())
        if n:
            self.rejected[reason] = self.rejected.get(reason, 0) + n
            seen = self.examples.setdefault(reason, [])
            for value in pd.unique(values[mask].dropna().astype("str")):
                if len(seen) >= EXAMPLES:
                    break
                if value not in seen:
                    seen.append(value)

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v} (e.g. {self.examples.get(k, [])[:3]})" for k, v in self.rejected.items())
        return f"{self.rows_rejected} of {self.rows} row(s) rejected: {reasons}"

    def as_dict(self) -> dict:
        return {"file": self.path, "rows": self.rows, "rows_rejected": self.rows_rejected,
                "rejected": dict(self.rejected), "examples": self.examples, "timestamp_unit": self.timestamp_unit}


def _iso(ms: int) -> str:
    """An epoch-ms value as ISO 8601 UTC, or the number itself beyond the year 9999."""
    try:
        return dt.datetime.fromtimestamp(int(ms) / 1000, dt.timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{int(ms)} ms"


def screen_events(log: pd.DataFrame, report: LoadReport, now_ms: int, skew_ms: int,
                  raw_types: pd.Series | None = None) -> pd.DataFrame:
    """The rows of a normalised log that may be loaded; the others are counted in ``report``.

    ``log["event_type"]`` is missing where the raw type was unknown (``raw_types`` gives the
    raw values for the examples).
    """
    index = log.index
    unknown = log["event_type"].isna()
    price = pd.to_numeric(log["price"], errors="coerce") if "price" in log else pd.Series(np.nan, index=index)
    negative = price.lt(0).fillna(False)
    future = log["timestamp"] > now_ms + skew_ms
    report.reject("unknown_event_type", unknown, raw_types if raw_types is not None else log["event_type"])
    report.reject("negative_price", negative, price)
    report.reject("future_timestamp", future, log["timestamp"][future].map(_iso).reindex(index))
    bad = unknown | negative | future
    report.rows_rejected += int(bad.sum())
    report.rows += len(log)
    if len(log) and bad.all():
        raise EventLogError(report.path, f"every row was rejected ({report.summary()})")
    return log[~bad.to_numpy()].reset_index(drop=True)

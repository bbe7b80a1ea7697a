"""Deterministic ids and timestamps for events that come from outside.

- ``stable_ids``: the data model's ids are positive integers. An id that already
  is one (``42``, ``"00042"``) is kept; anything else (``"85123A"``, a UUID) is
  hashed (BLAKE2b) into ``[2**40, 2**62)``, the same number on every machine and
  every run, far above the integer ids real logs use.
- ``derive_event_ids``: a ``client_event_id`` for event rows that have none, from
  a hash of the row's content plus its occurrence number among identical rows,
  so re-loading the same log inserts nothing new.
- ``to_epoch_ms``: ISO strings, datetimes or epoch numbers to epoch milliseconds UTC
  (naive times are taken as UTC); the unit of epoch numbers (s, ms, us, ns) is detected
  from the column's median magnitude (``recsys.data.screening.epoch_unit``) or given.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from recsys.data.screening import epoch_to_ms, epoch_unit

HASH_ID_MIN = 2**40
_HASH_ID_SPAN = 2**62 - 2**40


def stable_id(value) -> int:
    """The positive integer id for one raw id value (see the module docstring)."""
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].isdigit():  # integer ids read as floats (CustomerID 17850.0)
        text = text[:-2]
    if text.isascii() and text.isdigit() and 0 < int(text) < HASH_ID_MIN:
        return int(text)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return HASH_ID_MIN + int.from_bytes(digest, "big") % _HASH_ID_SPAN


def stable_ids(values: pd.Series) -> np.ndarray:
    """``stable_id`` of every value (computed once per distinct value); int64."""
    if values.isna().any():
        raise ValueError(f"column {values.name!r} has {int(values.isna().sum())} missing ids")
    codes, uniques = pd.factorize(values)
    mapped = np.array([stable_id(v) for v in uniques], dtype=np.int64)
    return mapped[codes]


def derive_event_ids(events: pd.DataFrame, source: str) -> pd.Series:
    """``{source}-{hash of the row}-{occurrence}`` for each row; at most 64 characters."""
    cols = [c for c in ("user_id", "product_id", "event_type", "session_id", "timestamp", "price") if c in events]
    row_hash = pd.util.hash_pandas_object(events[cols], index=False)
    occurrence = row_hash.groupby(row_hash.to_numpy()).cumcount()
    hexes = pd.Series([f"{h:016x}" for h in row_hash.to_numpy()], index=events.index, dtype="str")
    return f"{source[:40]}-" + hexes + "-" + occurrence.astype("str")


def to_epoch_ms(values: pd.Series, unit: str | None = None) -> np.ndarray:
    """Epoch milliseconds UTC (int64) of datetimes, ISO strings or epoch numbers (in ``unit``, else detected)."""
    return epoch_ms_and_unit(values, unit)[0]


def epoch_ms_and_unit(values: pd.Series, unit: str | None = None) -> tuple[np.ndarray, str | None]:
    """``to_epoch_ms`` and the unit the epoch numbers were read in (None for dates and ISO strings)."""
    name = values.name
    if values.empty:
        return np.empty(0, dtype=np.int64), unit
    if values.isna().any():
        raise ValueError(f"timestamp column {name!r} has {int(values.isna().sum())} missing values")
    numbers = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_datetime64_any_dtype(values) else None
    if numbers is not None and numbers.notna().all():
        numbers = numbers.to_numpy(dtype=np.float64)
        unit = unit or epoch_unit(numbers)
        return epoch_to_ms(numbers, unit), unit
    if unit is not None:
        raise ValueError(f"timestamp column {name!r} holds dates, not epoch numbers: a timestamp unit does not apply")
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values if getattr(values.dt, "tz", None) is not None else values.dt.tz_localize("UTC")
        return _datetimes_to_ms(stamps), None
    try:
        stamps = pd.to_datetime(values.astype("str").str.replace(" UTC", "+00:00", regex=False),
                                utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"timestamp column {name!r}: cannot parse as ISO dates or epoch numbers ({exc})") from exc
    return _datetimes_to_ms(stamps), None


def _datetimes_to_ms(stamps: pd.Series) -> np.ndarray:
    return ((stamps.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(
        dtype=np.int64
    )

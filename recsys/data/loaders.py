"""Real event logs as a ``Shop``: ``read_event_log(path, fmt, columns=None)``.

Formats:
- ``online-retail``: UCI Online Retail (see ``recsys.data.online_retail``).
- ``rees46``: the REES46 multi-category store log (CSV). view -> VIEW, cart ->
  ADD_TO_CART, purchase -> PURCHASE, remove_from_cart skipped; category = the top
  level of ``category_code`` (or "unknown"); name = brand + category_code words;
  session_id = user_session; ``client_event_id`` = ``rees46-{row}`` (row of the file).
- ``csv``: any CSV or Parquet log, described by a mapping string
  ``user=COL,item=COL,timestamp=COL[,event_type=COL,price=COL,category=COL,name=COL,
  country=COL,session=COL,event_id=COL]``. Without ``event_type`` every row is a
  PURCHASE; timestamps may be ISO strings or epoch numbers (s, ms, us or ns, detected
  per file or forced with ``timestamp_unit``); without ``event_id`` the
  ``client_event_id`` is derived from the row's content.

``read_checked`` also returns a ``LoadReport``: rows with an unknown event type, a
negative price or a timestamp in the future are rejected and counted there
(``recsys.data.screening``). A file that cannot be read (bad Parquet or CSV, a missing
column) is an ``EventLogError`` naming the file.

Ids are positive integers in the data model: other ids are mapped by
``recsys.data.ids.stable_ids`` (deterministic, the same on every run).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.constants import ADD_TO_CART, CLICK, IMPRESSION, PURCHASE, RETURN, VIEW, WISHLIST
from recsys.data.ids import derive_event_ids, epoch_ms_and_unit, stable_ids
from recsys.data.log_tables import UNKNOWN_CATEGORY, shop_from_log
from recsys.data.online_retail import categorize_description, online_retail_log
from recsys.data.screening import EventLogError, LoadReport, screen_events
from recsys.data.synthetic import Shop

FORMATS = ("online-retail", "rees46", "csv")
REQUIRED_KEYS = ("user", "item", "timestamp")
OPTIONAL_KEYS = ("event_type", "price", "category", "name", "country", "session", "event_id")
REES46_COLUMNS = ("event_time", "event_type", "product_id", "category_code", "brand", "price", "user_id",
                  "user_session")
SKIPPED = "SKIP"
# raw event type (lower case, "-" and " " read as "_") -> ours; SKIPPED rows are dropped
EVENT_SYNONYMS = {
    "view": VIEW, "page_view": VIEW, "detail": VIEW, "product_view": VIEW,
    "click": CLICK,
    "cart": ADD_TO_CART, "add_to_cart": ADD_TO_CART, "addtocart": ADD_TO_CART,
    "purchase": PURCHASE, "buy": PURCHASE, "order": PURCHASE, "transaction": PURCHASE,
    "wishlist": WISHLIST, "return": RETURN, "refund": RETURN, "impression": IMPRESSION,
    "remove_from_cart": SKIPPED,
}


def read_event_log(path: str | Path, fmt: str, columns: str | None = None, *,
                   timestamp_unit: str | None = None) -> Shop:
    """Read a real event log into a ``Shop``; ``columns`` is the mapping string of ``fmt="csv"``."""
    return read_checked(path, fmt, columns, timestamp_unit=timestamp_unit)[0]


def read_checked(path: str | Path, fmt: str, columns: str | None = None, *, timestamp_unit: str | None = None,
                 now_ms: int | None = None, skew_ms: int | None = None) -> tuple[Shop, LoadReport]:
    """The ``Shop`` of a log's acceptable rows and the ``LoadReport`` of the rejected ones.

    A row later than ``now_ms`` (default: the clock) + ``skew_ms`` (default: the
    ``event_clock_skew_seconds`` setting) is in the future.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; expected one of {list(FORMATS)}")
    if not path.is_file():
        raise FileNotFoundError(f"event log not found: {path}")
    if fmt != "csv" and columns is not None:
        raise ValueError(f"columns= is only for fmt='csv', not {fmt!r}")
    mapping = parse_column_mapping(columns) if fmt == "csv" else None
    report = LoadReport(str(path))
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if skew_ms is None:
        from recsys.settings import DEFAULTS

        skew_ms = DEFAULTS.event_clock_skew_seconds * 1000
    try:
        if fmt == "csv":
            log, raw_types = _read_mapped(path, mapping, timestamp_unit, report)
        elif fmt == "rees46":
            log, raw_types = _read_rees46(path, timestamp_unit, report)
        else:
            log = _unit_checked(online_retail_log(path), timestamp_unit)
            raw_types = None
        log = screen_events(log, report, now_ms, skew_ms, raw_types)
        return shop_from_log(log, categorize_description if fmt == "online-retail" else None), report
    except EventLogError:
        raise
    except (ValueError, OSError) as exc:  # parser errors, ArrowInvalid and UnicodeDecodeError are ValueErrors
        raise EventLogError(path, str(exc)) from exc
    except Exception as exc:  # other parser errors (pyarrow.ArrowException, ...): still one line naming the file
        if type(exc).__module__.split(".")[0] in ("pyarrow", "pandas"):
            raise EventLogError(path, f"{type(exc).__name__}: {exc}") from exc
        raise


def _unit_checked(log: pd.DataFrame, timestamp_unit: str | None) -> pd.DataFrame:
    if timestamp_unit is not None:
        raise ValueError("this format's timestamps are dates: --timestamp-unit does not apply")
    return log


def map_event_types(raw: pd.Series) -> pd.Series:
    """Our event type for every raw value (``SKIPPED`` for dropped ones, missing for unknown ones, which
    the loader rejects row by row); ValueError when the column has blanks."""
    if raw.isna().any():
        raise ValueError(f"column {raw.name!r} has {int(raw.isna().sum())} missing event types")
    keys = raw.astype("str").str.strip().str.lower().str.replace(r"[-\s]+", "_", regex=True)
    return keys.map(EVENT_SYNONYMS | {t.lower(): t for t in (VIEW, CLICK, PURCHASE, WISHLIST, RETURN,
                                                              ADD_TO_CART, IMPRESSION)})


def _read_table(path: Path, dtype=None) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=dtype)


def _timestamps(values: pd.Series, unit: str | None, report: LoadReport) -> np.ndarray:
    ms, report.timestamp_unit = epoch_ms_and_unit(values, unit)
    return ms


def _read_rees46(path: Path, unit: str | None, report: LoadReport) -> tuple[pd.DataFrame, pd.Series]:
    raw = _read_table(path, dtype={"user_session": "str", "category_code": "str", "brand": "str"})
    missing = [c for c in REES46_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: not a REES46 log, missing column(s) {missing}")
    raw = raw.reset_index(drop=True)
    types = map_event_types(raw["event_type"])
    rows = raw[types != SKIPPED]
    code = rows["category_code"].fillna("")
    name = (rows["brand"].fillna("") + " " + code.str.replace(r"[._]", " ", regex=True)).str.strip()
    log = pd.DataFrame({
        "user_id": stable_ids(rows["user_id"]),
        "product_id": stable_ids(rows["product_id"]),
        "event_type": pd.array(types[rows.index].to_numpy(), dtype="str"),
        "session_id": rows["user_session"].to_numpy(),
        "timestamp": _timestamps(rows["event_time"], unit, report),
        "price": pd.to_numeric(rows["price"], errors="coerce").to_numpy(dtype=np.float64),
        "client_event_id": "rees46-" + pd.Series(rows.index, dtype="int64").astype("str").to_numpy(),
        "name": name.where(name != "", None).to_numpy(),
        "category": code.str.split(".").str[0].replace("", UNKNOWN_CATEGORY).to_numpy(),
    })
    return log, rows["event_type"].reset_index(drop=True)


def parse_column_mapping(columns: str | None) -> dict[str, str]:
    """``"user=uid,item=sku,timestamp=ts"`` -> ``{"user": "uid", ...}``; ValueError when malformed."""
    if not columns or not columns.strip():
        raise ValueError("fmt='csv' needs columns='user=COL,item=COL,timestamp=COL[,event_type=COL,...]'")
    mapping: dict[str, str] = {}
    for part in columns.split(","):
        key, sep, column = (s.strip() for s in part.partition("="))
        if not sep or not key or not column:
            raise ValueError(f"bad column mapping entry {part.strip()!r}: expected KEY=COLUMN")
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            raise ValueError(f"unknown mapping key {key!r}; allowed: {list(REQUIRED_KEYS + OPTIONAL_KEYS)}")
        if key in mapping:
            raise ValueError(f"mapping key {key!r} given twice")
        mapping[key] = column
    missing = [k for k in REQUIRED_KEYS if k not in mapping]
    if missing:
        raise ValueError(f"column mapping lacks required key(s) {missing} (got {columns!r})")
    return mapping


def _read_mapped(path: Path, mapping: dict[str, str], unit: str | None,
                 report: LoadReport) -> tuple[pd.DataFrame, pd.Series]:
    text_cols = {c: "str" for k, c in mapping.items() if k not in ("price", "timestamp")}
    raw = _read_table(path, dtype=text_cols).reset_index(drop=True)
    absent = sorted({c for c in mapping.values() if c not in raw.columns})
    if absent:
        raise ValueError(f"{path}: column(s) {absent} named in the mapping are not in the file "
                         f"(columns: {list(raw.columns)})")
    col = {key: raw[name].rename(name) for key, name in mapping.items()}
    types = map_event_types(col["event_type"]) if "event_type" in col else pd.Series(PURCHASE, index=raw.index)
    keep = (types != SKIPPED).to_numpy()
    col, types = {k: v[keep] for k, v in col.items()}, types[keep]
    log = pd.DataFrame({
        "user_id": stable_ids(col["user"]),
        "product_id": stable_ids(col["item"]),
        "event_type": pd.array(types.to_numpy(), dtype="str"),
        "session_id": col["session"].to_numpy() if "session" in col else None,
        "timestamp": _timestamps(col["timestamp"], unit, report),
        "price": _prices(col["price"]) if "price" in col else np.nan,
    })
    for key in ("name", "category", "country"):
        if key in col:
            log[key] = col[key].to_numpy()
    if "name" not in col:
        log["name"] = ("item " + col["item"].astype("str")).to_numpy()
    if "event_id" in col:
        log["client_event_id"] = ("csv-" + col["event_id"].astype("str").str.slice(0, 60)).to_numpy()
    else:
        log["client_event_id"] = derive_event_ids(log, "csv").to_numpy()
    raw_types = col["event_type"].reset_index(drop=True) if "event_type" in col else log["event_type"]
    return log, raw_types


def _prices(values: pd.Series) -> np.ndarray:
    prices = pd.to_numeric(values, errors="coerce")
    bad = prices.isna() & values.notna()
    if bad.any():
        raise ValueError(f"price column {values.name!r}: not a number: {sorted(set(values[bad].astype('str')))[:5]}")
    return prices.to_numpy(dtype=np.float64)

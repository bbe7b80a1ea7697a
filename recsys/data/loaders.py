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
  PURCHASE; timestamps may be ISO strings, epoch seconds or epoch milliseconds;
  without ``event_id`` the ``client_event_id`` is derived from the row's content.

Ids are positive integers in the data model: other ids are mapped by
``recsys.data.ids.stable_ids`` (deterministic, the same on every run).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.constants import ADD_TO_CART, CLICK, IMPRESSION, PURCHASE, RETURN, VIEW, WISHLIST
from recsys.data.ids import derive_event_ids, stable_ids, to_epoch_ms
from recsys.data.log_tables import UNKNOWN_CATEGORY, shop_from_log
from recsys.data.online_retail import read_online_retail
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


def read_event_log(path: str | Path, fmt: str, columns: str | None = None) -> Shop:
    """Read a real event log into a ``Shop``; ``columns`` is the mapping string of ``fmt="csv"``."""
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; expected one of {list(FORMATS)}")
    if not path.is_file():
        raise FileNotFoundError(f"event log not found: {path}")
    if fmt == "csv":
        return _read_mapped(path, parse_column_mapping(columns))
    if columns is not None:
        raise ValueError(f"columns= is only for fmt='csv', not {fmt!r}")
    if fmt == "online-retail":
        return read_online_retail(path)
    return _read_rees46(path)


def map_event_types(raw: pd.Series) -> pd.Series:
    """Our event type for every raw value (``SKIPPED`` for dropped ones); ValueError on unknown values."""
    if raw.isna().any():
        raise ValueError(f"column {raw.name!r} has {int(raw.isna().sum())} missing event types")
    keys = raw.astype("str").str.strip().str.lower().str.replace(r"[-\s]+", "_", regex=True)
    mapped = keys.map(EVENT_SYNONYMS | {t.lower(): t for t in (VIEW, CLICK, PURCHASE, WISHLIST, RETURN,
                                                                 ADD_TO_CART, IMPRESSION)})
    if mapped.isna().any():
        unknown = sorted(set(raw[mapped.isna()].astype("str")))[:5]
        raise ValueError(f"column {raw.name!r}: unknown event type(s) {unknown}; known: {sorted(EVENT_SYNONYMS)}")
    return mapped


def _read_table(path: Path, dtype=None) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=dtype)


def _read_rees46(path: Path) -> Shop:
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
        "timestamp": to_epoch_ms(rows["event_time"]),
        "price": pd.to_numeric(rows["price"], errors="coerce").to_numpy(dtype=np.float64),
        "client_event_id": "rees46-" + pd.Series(rows.index, dtype="int64").astype("str").to_numpy(),
        "name": name.where(name != "", None).to_numpy(),
        "category": code.str.split(".").str[0].replace("", UNKNOWN_CATEGORY).to_numpy(),
    })
    return shop_from_log(log)


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


def _read_mapped(path: Path, mapping: dict[str, str]) -> Shop:
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
        "timestamp": to_epoch_ms(col["timestamp"]),
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
    return shop_from_log(log)


def _prices(values: pd.Series) -> np.ndarray:
    prices = pd.to_numeric(values, errors="coerce")
    bad = prices.isna() & values.notna()
    if bad.any():
        raise ValueError(f"price column {values.name!r}: not a number: {sorted(set(values[bad].astype('str')))[:5]}")
    return prices.to_numpy(dtype=np.float64)

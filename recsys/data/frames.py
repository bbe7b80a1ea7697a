"""Frames every step reads: the users and the catalogue, the aggregated training frame of a window, and the
generic column checks and user value segments.

The training frame aggregates in SQL; on PostgreSQL its rows come back through ``COPY``.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Engine, Float, case, cast, func, literal, select

from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_PRICE, COL_TIMESTAMP, COL_USER, EVENT_WEIGHTS, PURCHASE
from recsys.data.errors import NoTrainingDataError  # noqa: F401  (re-exported)
from recsys.db.models import Product, User, UserEvent
from recsys.timeutil import day_start_ms

USER_COLUMNS = (COL_USER, "country", "language", "device_type")
ITEM_COLUMNS = (COL_ITEM, "category", "price", "name")
SEGMENT_NEW, SEGMENT_REGULAR, SEGMENT_WHALE = "new", "regular", "whale"
FRAME_COLUMNS = (COL_USER, COL_ITEM, "weight", "purchases", "spend")
AGGREGATE_WORK_MEM = "256MB"
SIGNAL_EVENTS = tuple(t for t, w in EVENT_WEIGHTS.items() if w > 0)  # what users did with products
EVENT_COLUMNS = (COL_USER, COL_ITEM, COL_EVENT_TYPE, COL_TIMESTAMP)
WINDOW_COLUMNS = (*EVENT_COLUMNS, COL_PRICE)


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise a readable ``ValueError`` when ``df`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} frame lacks column(s) {missing}; has {list(df.columns)}")


def align_rows(ids: Iterable, table: pd.DataFrame, key: str, columns: Iterable[str]) -> pd.DataFrame:
    """One row per id, in ``ids`` order, with ``columns`` of ``table`` (ids absent from it get NaN attributes)."""
    known = table[list(columns)].drop_duplicates(key).set_index(key)
    return known.reindex(pd.Index(ids, name=key)).reset_index()


# --- value segments --------------------------------------------------------
def _purchase_totals(interactions: pd.DataFrame) -> pd.DataFrame:
    """Per user: purchases and spend, from event rows or from aggregated rows."""
    if COL_EVENT_TYPE in interactions.columns:
        bought = interactions[interactions[COL_EVENT_TYPE] == PURCHASE]
        spend = bought[COL_PRICE] if COL_PRICE in bought.columns else pd.Series(0.0, index=bought.index)
        frame = pd.DataFrame({COL_USER: bought[COL_USER], "purchases": 1.0, "spend": spend})
    elif "purchases" in interactions.columns:
        spend = interactions["spend"] if "spend" in interactions.columns else 0.0
        frame = pd.DataFrame({COL_USER: interactions[COL_USER], "purchases": interactions["purchases"], "spend": spend})
    else:
        raise ValueError("interactions need an 'event_type' column (events) or a 'purchases' column (aggregates)")
    totals = frame.fillna({"spend": 0.0}).groupby(COL_USER)[["purchases", "spend"]].sum()
    return totals[totals["purchases"] > 0]


def value_segments(interactions_df: pd.DataFrame, users_df: pd.DataFrame, *, whale_quantile: float = 0.9) -> pd.Series:
    """Value segment of every user of ``users_df``, from the purchases in ``interactions_df``.

    ``interactions_df`` is either event rows (``user_id, event_type`` and optionally
    ``price``) or aggregated rows (``user_id, purchases`` and optionally ``spend``),
    restricted by the caller to the window of interest. A user with no purchase is
    ``new``; buyers whose value (spend, or purchase count when no spend is known) is
    at or above the ``whale_quantile`` of all buyers' values are ``whale``; other
    buyers are ``regular``. Returns a Series indexed by ``user_id``.
    """
    if not 0.0 < whale_quantile < 1.0:
        raise ValueError(f"whale_quantile must be in (0, 1), got {whale_quantile}")
    require_columns(interactions_df, [COL_USER], "interactions")
    require_columns(users_df, [COL_USER], "users")
    totals = _purchase_totals(interactions_df)
    value = totals["spend"] if totals["spend"].sum() > 0 else totals["purchases"]
    segment = pd.Series(SEGMENT_REGULAR, index=totals.index, dtype=object)
    if len(value):
        segment[value >= value.quantile(whale_quantile)] = SEGMENT_WHALE
    ids = pd.Index(users_df[COL_USER].to_numpy(), name=COL_USER)
    return segment.reindex(ids).fillna(SEGMENT_NEW).rename("value_segment")


# --- reading ------------------------------------------------------------------
def _training_query(start_day: dt.date, end_day_exclusive: dt.date):
    e = UserEvent
    weighted = {t: w for t, w in EVENT_WEIGHTS.items() if w != 0}
    weight = func.sum(case({t: cast(literal(w), Float) for t, w in weighted.items()}, value=e.event_type))
    is_purchase = e.event_type == PURCHASE
    return (
        select(
            e.user_id, e.product_id, weight.label("weight"),
            func.sum(case((is_purchase, 1), else_=0)).label("purchases"),
            func.sum(case((is_purchase, func.coalesce(e.price, 0.0)), else_=0.0)).label("spend"),
        )
        .where(
            e.timestamp >= day_start_ms(start_day), e.timestamp < day_start_ms(end_day_exclusive),
            e.event_type.in_(list(weighted)), e.user_id.is_not(None), e.product_id.is_not(None),
        )
        .group_by(e.user_id, e.product_id)
        .having(weight > 0)
    )


def _copy_out(engine: Engine, stmt, columns: list[str]) -> pd.DataFrame:
    """PostgreSQL: stream a query's rows with ``COPY ... TO STDOUT`` (no per-row Python objects).

    The statement is rendered with literal values: only ints, dates and our own constants go in.
    """
    sql = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    buf = io.BytesIO()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'")  # hash-aggregate in memory, not on disk
        with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for chunk in copy:
                buf.write(chunk)
        raw.rollback()
    finally:
        raw.close()
    buf.seek(0)
    if not buf.getbuffer().nbytes:
        return pd.DataFrame(columns=columns)
    return pd.read_csv(buf, header=None, names=columns)


def load_training_frame(engine: Engine, start_day: dt.date, end_day_exclusive: dt.date) -> pd.DataFrame:
    """Per (user_id, product_id): summed event weights, purchases and spend in ``[start_day, end_day_exclusive)``.

    Aggregated in SQL; IMPRESSION (weight 0) is ignored and pairs with net weight <= 0
    (e.g. bought then returned) are dropped. On PostgreSQL the rows come back through COPY.
    """
    if end_day_exclusive <= start_day:
        raise ValueError(f"empty day range [{start_day}, {end_day_exclusive})")
    stmt = _training_query(start_day, end_day_exclusive)
    if engine.dialect.name == "postgresql":
        frame = _copy_out(engine, stmt, list(FRAME_COLUMNS))
    else:
        with engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(stmt).all(), columns=list(FRAME_COLUMNS))
    return frame.astype({COL_USER: "int64", COL_ITEM: "int64", "weight": "float64", "purchases": "int64", "spend": "float64"})


def load_users(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(select(*(getattr(User, c) for c in USER_COLUMNS))).all()
    return pd.DataFrame(rows, columns=list(USER_COLUMNS))


def load_products(engine: Engine) -> pd.DataFrame:
    """The catalogue (every product), ordered by product_id."""
    cols = ITEM_COLUMNS + ("in_stock", "created_at")
    with engine.connect() as conn:
        rows = conn.execute(select(*(getattr(Product, c) for c in cols)).order_by(Product.product_id)).all()
    return pd.DataFrame(rows, columns=list(cols))




def load_signal_events(engine: Engine, start_ms: int, end_ms: int, user_ids: list[int] | None = None) -> pd.DataFrame:
    """Signal events (``SIGNAL_EVENTS``) in ``[start_ms, end_ms)`` in time order, of ``user_ids`` when given:
    ``user_id, product_id, event_type, timestamp`` (what a family reading sequences trains and scores on)."""
    e = UserEvent
    stmt = select(e.user_id, e.product_id, e.event_type, e.timestamp).where(
        e.timestamp >= start_ms, e.timestamp < end_ms, e.event_type.in_(SIGNAL_EVENTS),
        e.user_id.is_not(None), e.product_id.is_not(None))
    if user_ids is not None:
        stmt = stmt.where(e.user_id.in_([int(u) for u in user_ids]))
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(e.timestamp, e.event_id)).all()
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS)).astype({COL_USER: "int64", COL_ITEM: "int64",
                                                                   COL_TIMESTAMP: "int64"})


def load_window_events(engine: Engine, start_day: dt.date, end_day_exclusive: dt.date) -> pd.DataFrame:
    """The raw events of ``[start_day, end_day_exclusive)`` with a user and a product."""
    e = UserEvent
    stmt = select(e.user_id, e.product_id, e.event_type, e.timestamp, e.price).where(
        e.timestamp >= day_start_ms(start_day), e.timestamp < day_start_ms(end_day_exclusive),
        e.user_id.is_not(None), e.product_id.is_not(None))
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(stmt).all(), columns=list(WINDOW_COLUMNS))
    return frame.astype({COL_USER: "int64", COL_ITEM: "int64", COL_TIMESTAMP: "int64", COL_PRICE: "float64"})

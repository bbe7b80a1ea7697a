"""Bulk writes through each database's fast path.

PostgreSQL: ``COPY ... FROM STDIN`` (psycopg 3) into a temporary table, then one
``INSERT ... SELECT ... ON CONFLICT`` so that re-loading the same rows is idempotent.
SQLite: ``executemany`` of an ``INSERT ... ON CONFLICT`` in one transaction.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Engine, text


def _quote(name: str) -> str:
    return f'"{name}"'


def _conflict_clause(conflict_cols: Sequence[str] | None, update_cols: Sequence[str] | None) -> str:
    if not conflict_cols:
        return ""
    target = ", ".join(_quote(c) for c in conflict_cols)
    if not update_cols:
        return f" ON CONFLICT ({target}) DO NOTHING"
    sets = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in update_cols)
    return f" ON CONFLICT ({target}) DO UPDATE SET {sets}"


def _csv_value(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_text(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    for row in df.itertuples(index=False, name=None):
        buf.write("\t".join(_csv_value(v) for v in row))
        buf.write("\n")
    return buf.getvalue()


def upsert_rows(
    engine: Engine,
    table: str,
    df: pd.DataFrame,
    *,
    conflict_cols: Sequence[str] | None = None,
    update_cols: Sequence[str] | None = None,
    chunk_rows: int = 200_000,
) -> int:
    """Insert ``df`` (its columns name the table's columns) and return the rows written.

    With ``conflict_cols``: rows that clash on them are skipped (``update_cols`` None)
    or updated. Without: a plain append.
    """
    if df.empty:
        return 0
    cols = list(df.columns)
    col_list = ", ".join(_quote(c) for c in cols)
    conflict = _conflict_clause(conflict_cols, update_cols)
    written = 0
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for start in range(0, len(df), chunk_rows):
                part = df.iloc[start : start + chunk_rows]
                cur.execute(
                    f"CREATE TEMP TABLE _bulk (LIKE {_quote(table)} INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                with cur.copy(f"COPY _bulk ({col_list}) FROM STDIN") as copy:
                    copy.write(_copy_text(part))
                cur.execute(f"INSERT INTO {_quote(table)} ({col_list}) SELECT {col_list} FROM _bulk{conflict}")
                written += max(cur.rowcount, 0)
                raw.commit()
        finally:
            raw.close()
        return written
    params = ", ".join(f":{c}" for c in cols)
    stmt = text(f"INSERT INTO {_quote(table)} ({col_list}) VALUES ({params}){conflict}")
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    with engine.begin() as conn:
        for start in range(0, len(records), chunk_rows):
            result = conn.execute(stmt, records[start : start + chunk_rows])
            written += max(result.rowcount, 0)
    return written

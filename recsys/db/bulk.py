"""Bulk writes through each database's fast path.

PostgreSQL: ``COPY ... FROM STDIN`` (psycopg 3) into a temporary table, then one
``INSERT ... SELECT ... ON CONFLICT`` so that re-loading the same rows is idempotent.
SQLite: ``executemany`` of an ``INSERT ... ON CONFLICT`` in one transaction.

Missing values are NULL on both paths, whatever pandas calls them: ``None``,
``NaN`` (float or numpy), ``NaT`` (pandas or numpy), ``pd.NA`` (nullable
``Int64`` / ``boolean`` / ``string`` columns).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine


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


def is_missing(v) -> bool:
    """True for every scalar pandas or numpy uses for "no value"."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, (float, np.floating)):
        return math.isnan(v)
    if isinstance(v, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(v))
    return False


def _csv_value(v) -> str:
    if is_missing(v):
        return "\\N"
    if isinstance(v, (bool, np.bool_)):
        return "t" if v else "f"
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))  # an integer column that pandas made float (it held a NaN) must parse as bigint
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_text(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    for row in df.itertuples(index=False, name=None):
        buf.write("\t".join(_csv_value(v) for v in row))
        buf.write("\n")
    return buf.getvalue()


def _bind_values(df: pd.DataFrame) -> pd.DataFrame:
    """Values sqlite3 can bind: missing values as None, pandas Timestamps as ``datetime``."""
    values = df.astype(object).where(df.notna(), None)
    for col in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[col]) or df[col].dtype == object:
            column = values[col]
            if any(isinstance(v, pd.Timestamp) for v in column):
                values[col] = pd.Series([v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in column],
                                        index=values.index, dtype=object)
    return values


def _write_part(dbapi_conn, dialect: str, table: str, part: pd.DataFrame, conflict: str) -> int:
    """Write one chunk through a DB-API connection, inside its current transaction (no commit)."""
    cols = list(part.columns)
    col_list = ", ".join(_quote(c) for c in cols)
    cur = dbapi_conn.cursor()
    try:
        if dialect == "postgresql":
            cur.execute(f"CREATE TEMP TABLE _bulk (LIKE {_quote(table)} INCLUDING DEFAULTS) ON COMMIT DROP")
            with cur.copy(f"COPY _bulk ({col_list}) FROM STDIN") as copy:
                copy.write(_copy_text(part))
            cur.execute(f"INSERT INTO {_quote(table)} ({col_list}) SELECT {col_list} FROM _bulk{conflict}")
            written = cur.rowcount
            cur.execute("DROP TABLE _bulk")  # several upserts may share one transaction
        else:
            params = ", ".join(f":{c}" for c in cols)
            cur.executemany(f"INSERT INTO {_quote(table)} ({col_list}) VALUES ({params}){conflict}",
                            _bind_values(part).to_dict("records"))
            written = cur.rowcount
    finally:
        cur.close()
    return max(written, 0)


def upsert_rows(
    target: Engine | Connection,
    table: str,
    df: pd.DataFrame,
    *,
    conflict_cols: Sequence[str] | None = None,
    update_cols: Sequence[str] | None = None,
    chunk_rows: int = 200_000,
) -> int:
    """Insert ``df`` (its columns name the table's columns) and return the rows written.

    With ``conflict_cols``: rows that clash on them are skipped (``update_cols`` None)
    or updated. Without: a plain append. ``target`` is an Engine (each chunk of
    ``chunk_rows`` commits on its own) or a Connection in a transaction (nothing is
    committed here: several upserts then stand or fall together).
    """
    if df.empty:
        return 0
    conflict = _conflict_clause(conflict_cols, update_cols)
    parts = [df.iloc[start : start + chunk_rows] for start in range(0, len(df), chunk_rows)]
    if isinstance(target, Connection):
        return sum(_write_part(target.connection, target.dialect.name, table, p, conflict) for p in parts)
    raw = target.raw_connection()
    try:
        written = 0
        for part in parts:
            written += _write_part(raw, target.dialect.name, table, part, conflict)
            raw.commit()
        return written
    finally:
        raw.close()

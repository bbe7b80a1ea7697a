"""The ``merch_rules`` table: create, list, update, expire (the admin API), the live rules and their version
(the API nodes' poll, the nightly precompute). Keyword-only functions over a SQLAlchemy engine or connection."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from recsys.db.models import MerchRuleRow

RULES = MerchRuleRow.__table__
EDITABLE = ("name", "action", "products", "categories", "price_min", "price_max", "weight", "slot", "share",
            "starts_at", "ends_at")


class UnknownRuleError(LookupError):
    pass


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create_rule(engine: Engine, *, values: Mapping[str, Any], by: str) -> dict:
    now = _now()
    row = {**{k: values.get(k) for k in EDITABLE}, "revision": 1, "created_by": by, "created_at": now,
           "updated_by": by, "updated_at": now}
    row["products"], row["categories"] = list(row["products"] or []), list(row["categories"] or [])
    row["weight"], row["share"] = row["weight"] or 0.0, row["share"] or 0.0
    with engine.begin() as conn:
        rule_id = conn.execute(insert(RULES).values(**row).returning(RULES.c.rule_id)).scalar_one()
        return _get(conn, rule_id)


def _get(conn: Connection, rule_id: int) -> dict:
    row = conn.execute(select(RULES).where(RULES.c.rule_id == rule_id)).first()
    if row is None:
        raise UnknownRuleError(f"no merchandising rule {rule_id}")
    return dict(row._mapping)


def get_rule(engine: Engine, *, rule_id: int) -> dict:
    with engine.connect() as conn:
        return _get(conn, rule_id)


def list_rules(engine: Engine, *, include_expired: bool = True) -> list[dict]:
    stmt = select(RULES).order_by(RULES.c.rule_id)
    if not include_expired:
        stmt = stmt.where(RULES.c.expired_at.is_(None))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def update_rule(engine: Engine, *, rule_id: int, changes: Mapping[str, Any], by: str) -> dict:
    """The rule with ``changes`` (names of ``EDITABLE``) applied, one revision more; an expired rule stays so."""
    values = {k: v for k, v in changes.items() if k in EDITABLE}
    with engine.begin() as conn:
        _get(conn, rule_id)
        conn.execute(update(RULES).where(RULES.c.rule_id == rule_id).values(
            **values, revision=RULES.c.revision + 1, updated_by=by, updated_at=_now()))
        return _get(conn, rule_id)


def expire_rule(engine: Engine, *, rule_id: int, by: str) -> dict:
    """The rule ended now, for good (kept in the table for the record)."""
    now = _now()
    with engine.begin() as conn:
        row = _get(conn, rule_id)
        if row["expired_at"] is None:
            conn.execute(update(RULES).where(RULES.c.rule_id == rule_id).values(
                expired_at=now, revision=RULES.c.revision + 1, updated_by=by, updated_at=now))
        return _get(conn, rule_id)


def version_statement():
    """``max(updated_at)`` and the row count: any create, update or expire changes them."""
    return select(func.max(RULES.c.updated_at), func.count())


def version_of(row) -> str:
    newest, count = row
    return f"{newest.isoformat() if newest is not None else '-'}/{count}"


def active_statement():
    """The rules not expired (a time window is checked per request: ``MerchRule.live``)."""
    return select(RULES).where(RULES.c.expired_at.is_(None)).order_by(RULES.c.rule_id)


def load_rules(engine: Engine) -> tuple[str, list[dict]]:
    """(version, the rows not expired): what precompute reads once per run."""
    with engine.connect() as conn:
        version = version_of(conn.execute(version_statement()).one())
        return version, [dict(r._mapping) for r in conn.execute(active_statement())]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.timezone.utc) if value is not None and value.tzinfo is None else value


def rules_live_during(engine: Engine, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """The rules that were live at some moment of ``[start, end)`` (created, in their window, not yet expired):
    what an A/B test's results record, since the rules apply to both arms alike."""
    out = []
    for row in list_rules(engine):
        begins = max(v for v in (_utc(row["created_at"]), _utc(row["starts_at"])) if v is not None)
        ends = min((v for v in (_utc(row["expired_at"]), _utc(row["ends_at"])) if v is not None), default=None)
        if begins < end and (ends is None or ends > start) and (ends is None or begins < ends):
            out.append({"rule_id": row["rule_id"], "name": row["name"], "action": row["action"],
                        "revision": row["revision"], "live_from": begins.isoformat(),
                        "live_until": ends.isoformat() if ends is not None else None})
    return out

"""The model registry: a thin adapter over ``recommendation_models``.

Life of a model: ``register_model`` (TRAINING) -> evaluate stores ``metrics`` -> it is made
LIVE (``recsys.pipeline.release``, which calls ``promote``), archived (ARCHIVED) or, with the ``ab_test``
policy, kept as a CANDIDATE for an A/B test; the judgement is the gate's
(``recsys.evaluation.gate``), the registry keeps rows, transitions and history. Every switch of the LIVE model
happens in one transaction: the old LIVE row is archived before the new one is
set LIVE, and the partial unique index ``uq_models_one_live`` makes a second
LIVE row impossible even for two concurrent promotions.

Every switch also writes a ``model_promotions`` row. ``rollback`` walks that
history back one step per call: it undoes the newest promotion not yet rolled
back (the one that made the current model LIVE) and brings back the model it
replaced, so two rollbacks go two steps back; a rollback is recorded (kind
``rollback``) but is not a step forward that a later rollback would undo.
``artifacts`` holds the SHA-256 of every file of a model (``recsys.integrity``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recsys.constants import (
    AB_RUNNING,
    STATUS_ARCHIVED,
    STATUS_CANDIDATE,
    STATUS_LIVE,
    STATUS_TRAINING,
)
from recsys.db.models import ABTest, ModelPromotion, RecommendationModel

KIND_PROMOTE, KIND_ROLLBACK = "promote", "rollback"
_REGISTER_ATTEMPTS = 5


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (the message says why)."""


class UnknownModelError(RegistryError, LookupError):
    """No registry row has this model id."""


class LiveChangedError(RegistryError):
    """The LIVE model is not the one the caller based its decision on."""


class ArchivedModelError(RegistryError):
    """An ARCHIVED model that this path may not make LIVE (an A/B test's winner archived meanwhile)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _session(bind: Engine | Connection) -> Session:
    """A session on the engine, or inside the transaction of ``bind`` when it is a connection (its changes
    then commit with that transaction: a savepoint is rolled back on error, the transaction goes on)."""
    return Session(bind, expire_on_commit=False, join_transaction_mode="create_savepoint")


def _get(session: Session, model_id: str) -> RecommendationModel:
    row = session.get(RecommendationModel, model_id)
    if row is None:
        raise UnknownModelError(f"unknown model id {model_id!r}: not in the registry")
    return row


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def model_to_dict(row: RecommendationModel) -> dict:
    """A JSON-able dict of one registry row (dates as ISO strings)."""
    cols = RecommendationModel.__table__.columns.keys()
    return {c: _iso(getattr(row, c)) for c in cols}


# --- register / read ----------------------------------------------------------
def register_model(
    engine: Engine,
    *,
    model_id: str,
    model_type: str,
    train_date: dt.date,
    params: dict,
    samples: int,
    artifact_uri: str,
    artifacts: dict[str, str] | None = None,
) -> int:
    """Insert a TRAINING row with version = max(version) + 1 and return the version.

    ``artifacts``: ``{file name: sha256}`` of the files already written for the model."""
    for _ in range(_REGISTER_ATTEMPTS):
        try:
            with _session(engine) as session, session.begin():
                if session.get(RecommendationModel, model_id) is not None:
                    raise RegistryError(f"model id {model_id!r} is already registered")
                version = (session.scalar(select(func.max(RecommendationModel.version))) or 0) + 1
                session.add(
                    RecommendationModel(
                        model_id=model_id, model_type=model_type, version=version, train_date=train_date,
                        metrics={}, params=dict(params), status=STATUS_TRAINING,
                        training_samples_count=int(samples), artifact_uri=artifact_uri, created_at=_now(),
                        artifacts=dict(artifacts or {}),
                    )
                )
            return version
        except IntegrityError:  # a concurrent registration took this version (or id): try again
            continue
    raise RegistryError(f"could not allocate a version for {model_id!r} after {_REGISTER_ATTEMPTS} attempts")


def get_model(engine: Engine | Connection, model_id: str) -> RecommendationModel:
    """The registry row of ``model_id``; ``UnknownModelError`` when there is none."""
    with _session(engine) as session:
        return _get(session, model_id)


def get_live(engine: Engine) -> RecommendationModel | None:
    with _session(engine) as session:
        return session.scalar(select(RecommendationModel).where(RecommendationModel.status == STATUS_LIVE))


def find_trained(engine: Engine, train_date: dt.date, params: dict) -> RecommendationModel | None:
    """The newest model trained for ``train_date`` with these params (re-runs reuse it), or None."""
    params = json.loads(json.dumps(params))  # as stored: tuples are JSON lists
    with _session(engine) as session:
        rows = session.scalars(
            select(RecommendationModel)
            .where(RecommendationModel.train_date == train_date)
            .order_by(RecommendationModel.version.desc())
        ).all()
        for row in rows:
            stored = row.params or {}
            if all(stored.get(k) == v for k, v in params.items()):
                session.expunge(row)
                return row
    return None


def set_metrics(engine: Engine, model_id: str, metrics: dict) -> None:
    """Replace the ``metrics`` of a model (evaluate stores ``{"new", "live", "popularity"}``)."""
    with _session(engine) as session, session.begin():
        _get(session, model_id).metrics = dict(metrics)


def record_artifacts(engine: Engine, model_id: str, checksums: dict[str, str],
                     drop: tuple[str, ...] = ()) -> dict[str, str]:
    """Add (or replace) the checksums of files just written for ``model_id``, and forget those of ``drop``
    (files removed); returns all of them."""
    with _session(engine) as session, session.begin():
        row = _get(session, model_id)
        kept = {name: digest for name, digest in (row.artifacts or {}).items() if name not in drop}
        row.artifacts = {**kept, **checksums}  # a new dict: the JSON column sees the change
        return dict(row.artifacts)


def get_artifacts(engine: Engine, model_id: str) -> dict[str, str]:
    """The recorded ``{file name: sha256}`` of a model (empty for a model registered before checksums)."""
    return dict(get_model(engine, model_id).artifacts or {})


def list_models(engine: Engine, limit: int | None = None) -> list[dict]:
    """Registry rows as dicts, newest (highest version) first."""
    stmt = select(RecommendationModel).order_by(RecommendationModel.version.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    with _session(engine) as session:
        return [model_to_dict(row) for row in session.scalars(stmt)]


# --- transitions ----------------------------------------------------------------
def _switch_live(session: Session, row: RecommendationModel, reason: str, kind: str = KIND_PROMOTE) -> str | None:
    """Archive the current LIVE model (if another), make ``row`` LIVE and record it in the
    promotion history; returns the previous LIVE id."""
    now = _now()
    previous = session.scalar(
        select(RecommendationModel).where(RecommendationModel.status == STATUS_LIVE).with_for_update()
    )
    if previous is not None and previous.model_id != row.model_id:
        previous.status, previous.archived_at = STATUS_ARCHIVED, now
        previous.decision = f"replaced by {row.model_id}: {reason}"[:512]
        session.flush()  # the old LIVE row leaves the partial unique index first
    row.status, row.promoted_at, row.archived_at = STATUS_LIVE, now, None
    row.decision = reason[:512]
    try:
        session.flush()
    except IntegrityError as exc:
        raise RegistryError(f"another promotion of a LIVE model happened concurrently; retry ({exc.orig})") from exc
    previous_id = previous.model_id if previous is not None else None
    session.add(ModelPromotion(model_id=row.model_id, previous_model_id=previous_id, kind=kind, promoted_at=now,
                               reason=reason[:512]))
    return previous_id


def _check_live(session: Session, expected_live: str | None) -> None:
    """``LiveChangedError`` unless ``expected_live`` is LIVE (checked under the LIVE row's lock)."""
    current = session.scalar(
        select(RecommendationModel).where(RecommendationModel.status == STATUS_LIVE).with_for_update())
    current_id = current.model_id if current is not None else None
    if current_id != expected_live:
        raise LiveChangedError(f"{expected_live} is no longer LIVE ({current_id or 'no model'} is)")


def promote(engine: Engine | Connection, model_id: str, reason: str, expected_live: str | None = None,
            allow_archived: bool = True) -> dict:
    """Make ``model_id`` the one LIVE model (an ARCHIVED one may come back by hand).

    ``expected_live``: promote only while that model is LIVE (``LiveChangedError`` otherwise), so a
    decision taken against one LIVE model never replaces a newer one. ``allow_archived=False`` (the
    A/B path): ``ArchivedModelError`` for an ARCHIVED model. ``engine`` may be a connection in a
    transaction: the switch then commits with it.
    """
    with _session(engine) as session, session.begin():
        row = _get(session, model_id)
        if row.status == STATUS_LIVE:
            return {"model_id": model_id, "status": STATUS_LIVE, "previous_live_model_id": model_id,
                    "reason": "already LIVE"}
        if row.status == STATUS_ARCHIVED and not allow_archived:
            raise ArchivedModelError(f"{model_id} is ARCHIVED ({row.decision or 'no reason recorded'}): only an "
                                     f"operator brings an archived model back (python -m recsys models promote)")
        if expected_live is not None:
            _check_live(session, expected_live)
        previous = _switch_live(session, row, reason)
        return {"model_id": model_id, "status": STATUS_LIVE, "previous_live_model_id": previous,
                "promoted_at": row.promoted_at.isoformat(), "reason": reason}


def why_not_promotable(engine: Engine | Connection, model_id: str, expected_live: str | None) -> str | None:
    """Why ``promote(model_id, expected_live=..., allow_archived=False)`` would be refused now, or None
    (checked under the LIVE row's lock, in ``engine``'s transaction when it is a connection)."""
    with _session(engine) as session, session.begin():
        row = _get(session, model_id)
        if row.status == STATUS_ARCHIVED:
            return f"{model_id} is ARCHIVED ({row.decision or 'no reason recorded'})"
        try:
            _check_live(session, expected_live)
        except LiveChangedError as exc:
            return str(exc)
        return None


def archive(engine: Engine | Connection, model_id: str, reason: str) -> dict:
    """Archive a non-LIVE model (re-archiving is a no-op that keeps the first ``archived_at``)."""
    with _session(engine) as session, session.begin():
        row = _get(session, model_id)
        if row.status == STATUS_LIVE:
            raise RegistryError(
                f"model {model_id!r} is LIVE: promote another model or roll back instead of archiving it"
            )
        if row.status != STATUS_ARCHIVED:
            row.status, row.archived_at = STATUS_ARCHIVED, _now()
        row.decision = reason[:512]
        return {"model_id": model_id, "status": STATUS_ARCHIVED, "reason": reason}


def mark_candidate(engine: Engine, model_id: str, reason: str) -> dict:
    """Keep a non-LIVE model as a CANDIDATE (for an A/B test against the LIVE one)."""
    with _session(engine) as session, session.begin():
        row = _get(session, model_id)
        if row.status == STATUS_LIVE:
            raise RegistryError(f"model {model_id!r} is already LIVE")
        row.status, row.archived_at, row.decision = STATUS_CANDIDATE, None, reason[:512]
        return {"model_id": model_id, "status": STATUS_CANDIDATE, "reason": reason}


def _open_steps(session: Session, limit: int | None = None) -> list[ModelPromotion]:
    """Promotions not rolled back yet, newest first: the steps rollback can walk back."""
    stmt = (select(ModelPromotion)
            .where(ModelPromotion.kind == KIND_PROMOTE, ModelPromotion.rolled_back_at.is_(None))
            .order_by(ModelPromotion.promotion_id.desc()))
    return list(session.scalars(stmt.limit(limit) if limit is not None else stmt))


def _rollback_step(session: Session, lock: bool = False) -> tuple[RecommendationModel, ModelPromotion]:
    """The LIVE row and the promotion that made it LIVE (the step a rollback undoes)."""
    stmt = select(RecommendationModel).where(RecommendationModel.status == STATUS_LIVE)
    current = session.scalar(stmt.with_for_update() if lock else stmt)
    if current is None:
        raise RegistryError("nothing to roll back: no model is LIVE")
    steps = _open_steps(session, 1)
    if not steps or steps[0].model_id != current.model_id:
        last = steps[0].model_id if steps else None
        raise RegistryError(f"the promotion history does not end at the LIVE model {current.model_id} "
                            f"(last open promotion: {last}): promote the model to return to by hand")
    if steps[0].previous_model_id is None:
        raise RegistryError(f"nothing to roll back to: {current.model_id} was promoted when no model was LIVE")
    return current, steps[0]


def rollback_target(engine: Engine) -> dict:
    """What ``rollback`` would do now: ``{"from": LIVE id, "to": target id}`` (``RegistryError`` if nothing)."""
    with _session(engine) as session:
        current, step = _rollback_step(session)
        return {"from": current.model_id, "to": step.previous_model_id}


def rollback(engine: Engine, expected_live: str | None = None) -> dict:
    """Undo the promotion of the LIVE model: the model it replaced becomes LIVE again.

    ``expected_live``: refuse (``RegistryError``) when another model became LIVE meanwhile
    (the caller prepared the rollback of ``expected_live``).
    """
    with _session(engine) as session, session.begin():
        current, step = _rollback_step(session, lock=True)
        if expected_live is not None and current.model_id != expected_live:
            raise LiveChangedError(f"the LIVE model changed to {current.model_id} while rolling back {expected_live}")
        target = _get(session, step.previous_model_id)
        reason = f"rollback from {current.model_id}"
        _switch_live(session, target, reason, kind=KIND_ROLLBACK)
        step.rolled_back_at = _now()
        return {"model_id": target.model_id, "version": target.version, "status": STATUS_LIVE,
                "previous_live_model_id": current.model_id, "reason": reason}


def rollback_chain(engine: Engine, depth: int) -> list[str]:
    """The models ``depth`` successive rollbacks would bring back, in that order."""
    if depth < 0:
        raise ValueError(f"depth must be >= 0, not {depth}")
    with _session(engine) as session:
        return [s.previous_model_id for s in _open_steps(session, depth) if s.previous_model_id is not None]


def models_in_running_tests(engine: Engine) -> set[str]:
    """Control and treatment of every RUNNING A/B test: precompute still serves their arms,
    even after a rollback or a newer promotion has archived one of them."""
    with _session(engine) as session:
        rows = session.execute(select(ABTest.control_model_id, ABTest.treatment_model_id)
                               .where(ABTest.status == AB_RUNNING)).all()
    return {model_id for row in rows for model_id in row if model_id}


def promotion_history(engine: Engine, limit: int = 20) -> list[dict]:
    """The newest rows of ``model_promotions`` as dicts, newest first."""
    with _session(engine) as session:
        rows = session.scalars(select(ModelPromotion).order_by(ModelPromotion.promotion_id.desc()).limit(limit))
        cols = ModelPromotion.__table__.columns.keys()
        return [{c: _iso(getattr(r, c)) for c in cols} for r in rows]

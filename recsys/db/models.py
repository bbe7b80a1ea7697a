"""SQLAlchemy 2 models: the tables of the design, identical on PostgreSQL and SQLite.

``user_events`` is an append-only log without foreign keys on purpose: events
from loaders or clients may name unknown ids, and it is the validation stage
(Great Expectations) that rejects such a day, with a readable report.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements an INTEGER PRIMARY KEY
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    country: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    device_type: Mapped[str | None] = mapped_column(String(16))
    first_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Product(Base):
    __tablename__ = "products"
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(512))
    category: Mapped[str] = mapped_column(String(128), index=True)
    price: Mapped[float] = mapped_column(Float)
    margin: Mapped[float] = mapped_column(Float, default=0.0)
    in_stock: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    last_updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class UserEvent(Base):
    __tablename__ = "user_events"
    event_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    product_id: Mapped[int | None] = mapped_column(BigInteger)
    event_type: Mapped[str | None] = mapped_column(String(32))
    session_id: Mapped[str | None] = mapped_column(String(255))
    timestamp: Mapped[int | None] = mapped_column(BigInteger)  # epoch ms, UTC
    price: Mapped[float | None] = mapped_column(Float)
    client_event_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_utcnow, server_default=func.now()
    )

    __table_args__ = (
        Index("idx_events_user_product_time", "user_id", "product_id", text("timestamp DESC")),
        # serves the nightly extraction of one UTC day (a range on timestamp)
        Index("idx_events_timestamp", "timestamp"),
    )


class UserProductInteraction(Base):
    __tablename__ = "user_product_interactions"
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    purchases: Mapped[int] = mapped_column(Integer, default=0)
    views: Mapped[int] = mapped_column(Integer, default=0)
    view_duration_seconds: Mapped[int] = mapped_column(Integer, default=0)
    last_interaction: Mapped[int | None] = mapped_column(BigInteger)  # epoch ms
    score: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (Index("idx_interactions_product", "product_id"),)


class RecommendationModel(Base):
    __tablename__ = "recommendation_models"
    model_id: Mapped[str] = mapped_column(String(26), primary_key=True)  # ULID
    model_type: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, unique=True)
    train_date: Mapped[dt.date] = mapped_column(Date)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True)
    training_samples_count: Mapped[int] = mapped_column(BigInteger, default=0)
    artifact_uri: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    promoted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    decision: Mapped[str | None] = mapped_column(String(512))
    # {file name under models/<model_id>/: hex sha256}, recorded by train and publish (recsys.integrity)
    artifacts: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)

    __table_args__ = (
        # exactly one LIVE model: a second LIVE row is refused by the database
        Index(
            "uq_models_one_live",
            "status",
            unique=True,
            postgresql_where=text("status = 'LIVE'"),
            sqlite_where=text("status = 'LIVE'"),
        ),
    )


class ModelPromotion(Base):
    """The promotion history: one row each time a model became LIVE (``kind`` promote or rollback).

    Rollback walks back the ``promote`` rows that are not ``rolled_back_at`` yet, newest first:
    each undoes one, so two rollbacks go two steps back (``recsys.registry.rollback``).
    """

    __tablename__ = "model_promotions"
    promotion_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("recommendation_models.model_id"))
    previous_model_id: Mapped[str | None] = mapped_column(String(26))
    kind: Mapped[str] = mapped_column(String(16))
    promoted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    rolled_back_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(String(512))


class ABTest(Base):
    __tablename__ = "ab_tests"
    test_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    control_model_id: Mapped[str] = mapped_column(ForeignKey("recommendation_models.model_id"))
    treatment_model_id: Mapped[str] = mapped_column(ForeignKey("recommendation_models.model_id"))
    treatment_fraction: Mapped[float] = mapped_column(Float, default=0.2)
    status: Mapped[str] = mapped_column(String(16), default="RUNNING")
    start_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    num_users: Mapped[int] = mapped_column(BigInteger, default=0)
    control_ctr: Mapped[float | None] = mapped_column(Float)
    treatment_ctr: Mapped[float | None] = mapped_column(Float)
    pvalue: Mapped[float | None] = mapped_column(Float)
    winner: Mapped[str | None] = mapped_column(String(16))
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)

    __table_args__ = (
        # one running test at a time (serving knows one): a second RUNNING row is refused by the database
        Index(
            "uq_ab_tests_one_running",
            "status",
            unique=True,
            postgresql_where=text("status = 'RUNNING'"),
            sqlite_where=text("status = 'RUNNING'"),
        ),
    )


class ABImpression(Base):
    """One recommendation answer: who saw which products, from which model, arm and test.

    Written by the impression flusher (``recsys.serving.impressions``) from the Redis
    stream, together with one ``user_events`` IMPRESSION row per product shown.
    """

    __tablename__ = "ab_impressions"
    impression_id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the stream entry id
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)  # epoch ms, UTC (server clock)
    test_id: Mapped[int | None] = mapped_column(BigInteger)
    arm: Mapped[str | None] = mapped_column(String(16))
    model_id: Mapped[str | None] = mapped_column(String(26))
    source: Mapped[str | None] = mapped_column(String(16))
    products: Mapped[list] = mapped_column(JSON, default=list)

    __table_args__ = (
        Index("idx_impressions_test_time", "test_id", "timestamp"),
        Index("idx_impressions_user_time", "user_id", "timestamp"),
    )


class ImpressionDeadLetter(Base):
    """A stream entry the flusher could not decode or the database refused, set aside with its reason.

    Written by ``recsys.serving.impressions`` (the entry is then acknowledged, so it blocks
    nothing); inspected and replayed with ``python -m recsys impressions dead-letters``.
    """

    __tablename__ = "impression_dead_letters"
    stream_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the Redis stream entry id
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the raw entry, as text
    reason: Mapped[str] = mapped_column(String(512))
    failed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class PipelineRun(Base):
    """One row per (run date, step): what each nightly step did, for metrics and on-call."""

    __tablename__ = "pipeline_runs"
    run_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    step: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class MerchRuleRow(Base):
    """A merchandising rule (``recsys.ranking.merch_rules``), versioned: who created and last changed it, when.

    ``expired_at`` ends a rule for good (the admin's expire); ``starts_at`` / ``ends_at`` is its optional time
    window. Every change sets ``updated_at`` and adds 1 to ``revision``: the API nodes poll
    ``max(updated_at)`` and the row count to know the rules changed (``recsys.db.merch_rules``).
    """

    __tablename__ = "merch_rules"
    rule_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))  # boost | bury | pin | block | promote
    products: Mapped[list[int]] = mapped_column(JSON, default=list)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    price_min: Mapped[float | None] = mapped_column(Float)
    price_max: Mapped[float | None] = mapped_column(Float)
    weight: Mapped[float] = mapped_column(Float, default=0.0)  # boost / bury
    slot: Mapped[int | None] = mapped_column(Integer)  # pin
    share: Mapped[float] = mapped_column(Float, default=0.0)  # promote
    starts_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)

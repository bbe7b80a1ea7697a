"""The serving state of one app: clients, settings and the in-memory snapshots.

Built by ``create_app``'s lifespan and refreshed in the background by
``refresh.py``; requests only read it. Each snapshot is replaced whole (one
attribute assignment), so a request sees the old one or the new one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from recsys.api.catalog import CatalogSnapshot
from recsys.api.db_store import DbStore
from recsys.api.embeddings import ModelEmbeddings
from recsys.api.fallbacks import FallbackLists
from recsys.api.metrics import ServingMetrics
from recsys.api.redis_store import RedisStore
from recsys.api.session_state import SessionState
from recsys.api.tiers import ServeContext
from recsys.artifacts import ArtifactStore
from recsys.ranking.rerank import RerankConfig
from recsys.settings import Settings


@dataclass
class ServingState:
    settings: Settings
    redis: RedisStore
    db: DbStore
    store: ArtifactStore | None
    metrics: ServingMetrics
    rules: RerankConfig
    catalog: CatalogSnapshot = field(default_factory=CatalogSnapshot)
    lists: FallbackLists = field(default_factory=FallbackLists)
    embeddings: ModelEmbeddings | None = None
    live_model: dict[str, Any] | None = None
    ab_test: dict[str, Any] | None = None
    similar_cache: dict[int, tuple[float, list[tuple[int, int]]]] = field(default_factory=dict)

    def degraded(self, dependency: str) -> None:
        self.metrics.degraded.labels(dependency=dependency).inc()

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    @property
    def live_model_id(self) -> str | None:
        return self.live_model["model_id"] if self.live_model else None

    @property
    def treatment_model_id(self) -> str | None:
        """The model of a running A/B test other than the LIVE one (its lists are read in the same trip)."""
        if not self.ab_test:
            return None
        treatment = self.ab_test.get("treatment_model_id")
        return treatment if treatment and treatment != self.live_model_id else None

    def context(self, session: SessionState) -> ServeContext:
        s = self.settings
        return ServeContext(catalog=self.catalog, lists=self.lists, session=session, rules=self.rules,
                            now_ms=self.now_ms(), new_days=s.new_product_days,
                            new_arrival_slots=s.tier3_new_arrivals)

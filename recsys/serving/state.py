"""The serving state of one app: clients, settings and the in-memory snapshots.

Built by ``create_app``'s lifespan and refreshed in the background by
``refresh.py``; requests only read it. Each snapshot is replaced whole (one
attribute assignment), so a request sees the old one or the new one.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recsys.serving.assignment import is_running
from recsys.artifacts import ArtifactStore
from recsys.families import ServedModel
from recsys.ranking.repurchase import CategoryRepurchase
from recsys.ranking.rerank import RerankConfig
from recsys.ranking.merch_rules import RuleSet
from recsys.serving.answers import context_digest, merch_key
from recsys.serving.catalog import CatalogSnapshot
from recsys.serving.fallbacks import FallbackLists
from recsys.serving.filters import ItemFilter
from recsys.serving.metrics import ServingMetrics
from recsys.serving.session_state import SessionState
from recsys.serving.stores.db_store import DbStore
from recsys.serving.stores.redis_store import RedisStore
from recsys.serving.tiers import ServeContext
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
    embeddings: ServedModel | None = None  # the LIVE model as this node serves it (any family)
    live_model: dict[str, Any] | None = None
    ab_test: dict[str, Any] | None = None
    arm_embeddings: dict[str, ServedModel] = field(default_factory=dict)  # non-LIVE models of the A/B test
    # served model id -> its family scores in real time from the session's sequence (recsys.serving.realtime)
    real_time: dict[str, bool] = field(default_factory=dict)
    similar_cache: dict[int, tuple[float, list[tuple[int, int]]]] = field(default_factory=dict)
    repurchase: Mapping[str, CategoryRepurchase] = field(default_factory=dict)  # the nightly repurchase intervals
    merch_rules: RuleSet = field(default_factory=RuleSet)  # the merchandising rules (polled: refresh.refresh_rules)
    _answer_context: tuple[object, object, str, bytes] | None = field(default=None, repr=False)

    def degraded(self, dependency: str) -> None:
        self.metrics.degraded.labels(dependency=dependency).inc()

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    @property
    def live_model_id(self) -> str | None:
        return self.live_model["model_id"] if self.live_model else None

    def running_test(self) -> dict[str, Any] | None:
        """The A/B test being served: RUNNING and not past its end."""
        test = self.ab_test
        return test if is_running(test, dt.datetime.now(dt.timezone.utc)) else None

    def embeddings_for(self, model_id: str | None) -> ServedModel | None:
        """The loaded served model ``model_id`` (the LIVE model's when None)."""
        if model_id is None or (self.embeddings is not None and self.embeddings.model_id == model_id):
            return self.embeddings
        return self.arm_embeddings.get(model_id)

    def answer_context(self) -> bytes:
        """The serving context's digest of cached answers (``answers.context_digest``), once per snapshot pair."""
        cached = self._answer_context
        merch = merch_key(self.merch_rules, self.now_ms()) if self.merch_rules.rules else ""
        if cached is None or cached[0] is not self.catalog or cached[1] is not self.lists or cached[2] != merch:
            s = self.settings
            digest = context_digest(self.catalog, self.lists, self.rules, s.new_product_days, s.exclude_seen_types,
                                    s.reasons, merch)
            cached = self._answer_context = (self.catalog, self.lists, merch, digest)
        return cached[3]

    def context(self, session: SessionState, just_viewed: str | None = None,
                item_filter: ItemFilter | None = None) -> ServeContext:
        """The request's context; ``just_viewed``: the product a real-time model's list follows; ``item_filter``:
        the request's filters (None: none)."""
        s, now = self.settings, self.now_ms()
        merch = self.merch_rules.live(now) if self.merch_rules.rules else ()
        return ServeContext(catalog=self.catalog, lists=self.lists, session=session, rules=self.rules,
                            now_ms=now, new_days=s.new_product_days, merch=merch,
                            new_arrival_slots=s.tier3_new_arrivals, seen_types=s.exclude_seen_types,
                            personal_reasons=s.personal_reasons, just_viewed=just_viewed,
                            item_filter=item_filter)

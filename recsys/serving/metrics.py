"""Prometheus metrics of the API, one registry per app (so tests can build many apps).

With several uvicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` (an empty folder)
before start: prometheus_client then keeps the values in files there and
``/metrics`` sums every worker's. The cache hit rate is
``rate(recsys_cache_requests_total{result="hit"}[5m]) / rate(recsys_cache_requests_total[5m])``.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SOURCES = ("personalized", "category", "trending")
DEPENDENCIES = ("redis", "database")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServingMetrics:
    """The API's counters and the latency histogram (names are part of the contract)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.latency = Histogram("recsys_request_latency_seconds", "Request latency per endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.cache = Counter("recsys_cache_requests", "recs:{user_id} look-ups of Tier-1 users",
                             ["result"], registry=r)
        self.source = Counter("recsys_recommendation_source", "Lists served per tier", ["source"], registry=r)
        self.degraded = Counter("recsys_degraded", "Answers given without a dependency", ["dependency"], registry=r)
        self.errors = Counter("recsys_errors", "Error answers (HTTP >= 400)", ["endpoint", "status"], registry=r)
        self.events = Counter("recsys_events_logged", "Events stored", ["event_type"], registry=r)
        self.requests = Counter("recsys_requests", "Answers per endpoint, API key name and status",
                                ["endpoint", "key", "status"], registry=r)
        self.rate_limited = Counter("recsys_rate_limited", "Requests refused with 429, per API key name", ["key"],
                                    registry=r)
        self.rate_limit_skipped = Counter(
            "recsys_rate_limit_unavailable", "Requests served without a rate-limit check (Redis down)", registry=r)
        for result in ("hit", "miss"):
            self.cache.labels(result=result)
        for source in SOURCES:
            self.source.labels(source=source)
        for dep in DEPENDENCIES:
            self.degraded.labels(dependency=dep)

    def observe_request(self, endpoint: str, seconds: float, status: int, key: str = "-") -> None:
        self.latency.labels(endpoint=endpoint).observe(seconds)
        self.requests.labels(endpoint=endpoint, key=key, status=str(status)).inc()
        if status >= 400:
            self.errors.labels(endpoint=endpoint, status=str(status)).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text: this process's registry, or every worker's in multiprocess mode."""
        if multiprocess_dir():
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    @staticmethod
    def mark_process_dead(pid: int) -> None:
        if multiprocess_dir():
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)

"""The serving core's store adapters: Redis (the hot path's one round trip, sessions, lists) and the
database (events by group commit, the catalogue, the registry rows), each behind a circuit breaker; a
failure is ``DependencyDown`` (``recsys.serving.errors``)."""

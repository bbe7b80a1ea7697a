"""A model's list for one user as Tier 1 reads it: the cached ``recs:`` value, or one scored on the fly.

``UserLists`` holds the list of the model expected to serve the user (LIVE, or the user's A/B arm)
and the LIVE list as a last resort; the service (``service.py``) and the real-time path
(``realtime.py``) both decide on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelList:
    products: list[int]
    scores: list[float]
    reasons: list[str] | None
    model_version: str | None
    sequence: str | None = None  # a real-time model's list: the key of the sequence it was made for


@dataclass(frozen=True)
class UserLists:
    """The cached list for the user's model (``expected``), and the LIVE list as a last resort."""

    cached: ModelList | None
    expected: str | None
    fallback: ModelList | None = None

    @property
    def stale(self) -> bool:
        return self.cached is not None and self.expected is not None and self.cached.model_version != self.expected


def model_list(payload: Mapping | None) -> ModelList | None:
    """The list of a ``recs:`` value (``keys.recs_payload``); None when it holds no product."""
    if not payload or not payload.get("products"):
        return None
    return ModelList(products=[int(p) for p in payload["products"]],
                     scores=[float(s) for s in payload.get("scores") or [0.0] * len(payload["products"])],
                     reasons=list(payload.get("reasons") or []) or None,
                     model_version=payload.get("model_version"), sequence=payload.get("seq"))

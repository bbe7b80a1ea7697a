"""Business re-ranking rules: pure functions over a list of ``Candidate``.

Every rule takes a list and returns a new list (inputs are never mutated).
Score boosts are additive and scale-free: ``weight`` is a fraction of the
list's score range (max - min), so ``weight=0.1`` moves an item by a tenth of
the spread whatever the model's score scale. Boost rules return the list
sorted by the new score (stable: ties keep their order); ``diversify`` and
``demote_out_of_stock`` only reorder.

``rerank`` applies the rules in this order:

1. ``cross_sell``   complements of purchased categories up, the purchased categories down
2. ``boost_session`` categories of the current session up
3. ``boost_margin``  higher-margin products up
4. ``boost_freshness`` new products up (linear decay over ``new_days``)
5. ``demote_out_of_stock`` out-of-stock products to the end (or dropped)
6. ``diversify``     at most ``max_per_category`` per category in each block, applied to
   the in-stock part and to the out-of-stock tail separately

Boosts first (they change scores), then the reorderings. Stock splits the list
before diversity so that nothing brings an unavailable product back up, and so
that the in-stock head keeps its per-category cap.

``boost_popular`` (products with many events in the trending window up) is not
one of ``rerank``'s rules: it runs where a product's popularity is known for the
whole catalogue, in the nightly precompute (batch form ``boost_popular_rows``,
weight ``RECSYS_RERANK_TRENDING_WEIGHT``), so the cached scores carry it; the API
applies it to the lists it scores on the fly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.ranking.rank_columns import (
    RankInputs,
    cross_sell_amounts,
    diversified_order,
    freshness_amounts,
    margin_amounts,
    rerank_positions,
    score_spread,
    session_amounts,
)

OUT_OF_STOCK_MODES = ("demote", "drop")


class RerankError(ValueError):
    """A re-ranking rule was given an invalid setting."""


@dataclass(slots=True)
class Candidate:
    """One recommendable product. Treated as immutable: rules return copies (``with_score``).

    (Not ``frozen``: a frozen dataclass is about 5x slower to build, and precompute
    builds a few hundred per user.)
    """

    product_id: int
    score: float
    category: str = ""
    in_stock: bool = True
    margin: float = 0.0
    is_new: bool = False
    reason: str = ""
    age_days: float | None = None  # days since the product was created, when known
    popularity: int = 0  # recent interactions, used to tell a "new arrival" from a known product

    def with_score(self, score: float) -> Candidate:
        return Candidate(self.product_id, score, self.category, self.in_stock, self.margin, self.is_new,
                         self.reason, self.age_days, self.popularity)

    def with_reason(self, reason: str) -> Candidate:
        return Candidate(self.product_id, self.score, self.category, self.in_stock, self.margin, self.is_new,
                         reason, self.age_days, self.popularity)


@dataclass(frozen=True)
class RerankConfig:
    """Which rules run and how strongly. A weight of 0 (or None) switches a rule off."""

    max_per_category: int | None = 3
    out_of_stock: str | None = "demote"  # "demote" | "drop" | None (keep as is)
    margin_weight: float = 0.0
    freshness_weight: float = 0.0
    new_days: int = 14
    session_weight: float = 0.2
    cross_sell_weight: float = 0.2
    complements: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_per_category is not None and self.max_per_category < 1:
            raise RerankError(f"max_per_category must be >= 1 or None, not {self.max_per_category}")
        if self.out_of_stock is not None and self.out_of_stock not in OUT_OF_STOCK_MODES:
            raise RerankError(f"out_of_stock must be one of {OUT_OF_STOCK_MODES} or None, not {self.out_of_stock!r}")
        if self.new_days < 1:
            raise RerankError(f"new_days must be >= 1, not {self.new_days}")


def _spread(items: Sequence[Candidate]) -> float:
    """The list's score range; 1.0 for an empty or flat list so that boosts still act."""
    return score_spread([c.score for c in items])


def _by_score(items: Iterable[Candidate]) -> list[Candidate]:
    return sorted(items, key=lambda c: -c.score)


def _boost(items: Sequence[Candidate], amounts: Sequence[float] | None, weight: float) -> list[Candidate]:
    """Add ``weight * spread * amount`` to each score and sort by the new score (no amounts: unchanged)."""
    if not weight or not items or amounts is None:
        return list(items)
    unit = weight * _spread(items)
    return _by_score(c.with_score(c.score + unit * a) if a else c for c, a in zip(items, amounts))


def diversify(items: Sequence[Candidate], max_per_category: int) -> list[Candidate]:
    """Reorder so every block holds at most ``max_per_category`` items of one category.

    An item that is the n-th of its category goes to round ``n // max_per_category``;
    the list is rounds in order, keeping the original order inside a round.
    """
    if max_per_category < 1:
        raise RerankError(f"max_per_category must be >= 1, not {max_per_category}")
    return [items[i] for i in diversified_order([c.category for c in items], max_per_category)]


def demote_out_of_stock(items: Sequence[Candidate], mode: str = "demote") -> list[Candidate]:
    """Out-of-stock products to the end of the list (``demote``) or out of it (``drop``)."""
    if mode not in OUT_OF_STOCK_MODES:
        raise RerankError(f"mode must be one of {OUT_OF_STOCK_MODES}, not {mode!r}")
    available = [c for c in items if c.in_stock]
    if mode == "drop":
        return available
    return available + [c for c in items if not c.in_stock]


def boost_margin(items: Sequence[Candidate], weight: float) -> list[Candidate]:
    """Higher-margin products up, in proportion to margin / the list's highest margin."""
    return _boost(items, margin_amounts([c.margin for c in items]), weight)


def boost_freshness(items: Sequence[Candidate], weight: float, new_days: int) -> list[Candidate]:
    """New products up: ``1 - age/new_days`` when the age is known, else 1 for ``is_new`` items."""
    if new_days < 1:
        raise RerankError(f"new_days must be >= 1, not {new_days}")
    amounts = freshness_amounts([c.age_days for c in items], [c.is_new for c in items], new_days)
    return _boost(items, amounts, weight)


def boost_popular(items: Sequence[Candidate], weight: float) -> list[Candidate]:
    """Recently popular products up, in proportion to popularity / the list's highest popularity."""
    top = max((c.popularity for c in items), default=0)
    if top <= 0:
        return list(items)
    return _boost(items, [max(c.popularity, 0) / top for c in items], weight)


def boost_session(items: Sequence[Candidate], categories: Iterable[str], weight: float) -> list[Candidate]:
    """Products of the categories seen in the current session up."""
    return _boost(items, session_amounts([c.category for c in items], categories), weight)


def cross_sell(
    items: Sequence[Candidate],
    purchased_categories: Iterable[str],
    complements: Mapping[str, Sequence[str]],
    weight: float = 0.2,
) -> list[Candidate]:
    """After a purchase, its complements up and more of the same down.

    ``complements`` maps a category to the categories that go with it
    (``{"cameras": ["camera accessories"]}``): after buying a camera, accessories
    gain ``weight`` and other cameras lose ``weight``. Categories without an
    entry (consumables, say) are left alone.
    """
    amounts = cross_sell_amounts([c.category for c in items], purchased_categories, complements)
    return _boost(items, amounts, weight)


def rerank(
    items: Sequence[Candidate],
    rules: RerankConfig,
    *,
    session_categories: Iterable[str] = (),
    purchased_categories: Iterable[str] = (),
) -> list[Candidate]:
    """Apply the configured rules in the order of the module docstring (``rank_columns.rerank_positions``;
    an item is copied where a boost changed its score)."""
    positions, scores = rerank_positions(RankInputs.of(items), rules, session_categories=session_categories,
                                         purchased_categories=purchased_categories)
    return [items[i] if scores[i] is items[i].score else items[i].with_score(scores[i]) for i in positions]


def rerank_rows(
    columns: np.ndarray,
    valid: np.ndarray,
    category_codes: np.ndarray,
    in_stock: np.ndarray,
    max_per_category: int | None,
    out_of_stock: str | None = "demote",
) -> list[np.ndarray]:
    """Batch form of ``rerank`` with the stock and diversity rules only (no boosts), for precompute.

    ``columns`` (users x K): candidate product indexes per user, best first; ``valid``
    (same shape): False for padding (e.g. -inf scores). ``category_codes`` and
    ``in_stock`` are indexed by product. Returns per user the reordered product
    indexes, the same order ``rerank`` gives (tested against it).
    """
    if out_of_stock is not None and out_of_stock not in OUT_OF_STOCK_MODES:
        raise RerankError(f"out_of_stock must be one of {OUT_OF_STOCK_MODES} or None, not {out_of_stock!r}")
    if max_per_category is not None and max_per_category < 1:
        raise RerankError(f"max_per_category must be >= 1 or None, not {max_per_category}")
    n, k = columns.shape
    stock = in_stock[columns]
    group = np.zeros((n, k), dtype=np.int64) if out_of_stock is None else (~stock).astype(np.int64)
    keep = valid & stock if out_of_stock == "drop" else valid.copy()
    group[~keep] = 2
    pos = np.broadcast_to(np.arange(k, dtype=np.int64), (n, k))
    rounds = np.zeros((n, k), dtype=np.int64)
    if max_per_category and k:
        key = group * (int(category_codes.max(initial=0)) + 1) + category_codes[columns]
        order = np.argsort(key, axis=1, kind="stable")  # runs of one (group, category), original order inside
        run_key = np.take_along_axis(key, order, axis=1)
        starts = np.ones((n, k), dtype=bool)
        starts[:, 1:] = run_key[:, 1:] != run_key[:, :-1]
        occurrence = pos - np.maximum.accumulate(np.where(starts, pos, 0), axis=1)
        np.put_along_axis(rounds, order, occurrence // max_per_category, axis=1)
    final = np.argsort(group * (k * k + k) + rounds * k + pos, axis=1)
    reordered = np.take_along_axis(columns, final, axis=1)
    kept = np.take_along_axis(group, final, axis=1) < 2
    return [row[m] for row, m in zip(reordered, kept)]


def boost_popular_rows(columns: np.ndarray, scores: np.ndarray, popularity: np.ndarray,
                       weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Batch form of ``boost_popular``, for precompute (tested against it).

    ``columns`` (users x K): candidate product indexes per user, best first; ``scores`` (same shape):
    their scores, -inf for padding (left out of the list: not boosted, not counted in its score range);
    ``popularity`` is indexed by product. Returns ``(columns, scores)`` re-sorted by the boosted score
    (stable, as ``boost_popular``).
    """
    if not weight or not columns.size:
        return columns, scores
    finite = np.isfinite(scores)
    pop = np.where(finite, popularity[columns], 0).astype(np.float64)
    top = pop.max(axis=1, keepdims=True)
    amount = np.divide(pop, top, out=np.zeros_like(pop), where=top > 0)
    high = np.where(finite, scores, -np.inf).max(axis=1, keepdims=True)
    low = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
    spread = np.where(np.isfinite(high) & (high > low), high - low, 1.0)
    boosted = np.where(finite & (amount > 0), scores + (weight * spread) * amount, scores)
    order = np.argsort(-boosted, axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1), np.take_along_axis(boosted, order, axis=1)


CANDIDATE_FACTOR = 3  # candidates scored per user = this x the list length kept, before boosting and re-ranking


def precompute_rows(columns: np.ndarray, scores: np.ndarray, popularity: np.ndarray, trending_weight: float,
                    category_codes: np.ndarray, in_stock: np.ndarray, max_per_category: int | None,
                    keep: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The list precompute caches for each user, from its best-scored candidates (``columns``, best first,
    ``-inf`` for padding and seen products): the popular-products boost, then the stock and diversity rules,
    then the first ``keep``. The one implementation behind precompute and offline evaluation.

    Returns the boosted ``(columns, scores)`` and, per user, the kept product indexes in list order.
    """
    columns, scores = boost_popular_rows(columns, scores, popularity, trending_weight)
    orders = rerank_rows(columns, np.isfinite(scores), category_codes, in_stock, max_per_category, "demote")
    return columns, scores, [order[:keep] for order in orders]

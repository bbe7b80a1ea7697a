"""The serving tiers as pure functions: candidates in, re-ranked items with reasons out.

- Tier 1 ``personalized``: the model's list (cached or scored on the fly).
- Tier 2 ``category``: bestsellers of the categories the user browsed, most recent first.
- Tier 3 ``trending``: global trending with new arrivals every few slots.
Every tier adds cross-sell candidates after a purchase (bestsellers of the
categories that go with it), leaves out what the user just bought, and goes
through ``recsys.ranking.rerank`` with the user's session. Reasons come from
``recsys.ranking.reasons``, from the list that produced each item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from recsys.api.catalog import CatalogSnapshot
from recsys.api.fallbacks import FallbackLists, RankedList
from recsys.api.session_state import SessionState
from recsys.constants import REASON_LIKE_YOU
from recsys.ranking.reasons import (
    SOURCE_CROSS_SELL,
    SOURCE_MODEL,
    SOURCE_NEW_ARRIVALS,
    SOURCE_POPULAR,
    SOURCE_TRENDING,
    ReasonContext,
    reason_for,
)
from recsys.ranking.rerank import Candidate, RerankConfig, rerank

PERSONALIZED, CATEGORY, TRENDING = "personalized", "category", "trending"
TIER2_CATEGORIES = 3  # most recent categories a Tier-2 list draws from
CROSS_SELL_PER_CATEGORY = 3


@dataclass(frozen=True)
class ServeContext:
    """Everything the pure tiers need about one request."""

    catalog: CatalogSnapshot
    lists: FallbackLists
    session: SessionState
    rules: RerankConfig
    now_ms: int
    new_days: int
    new_arrival_slots: int = 3

    def candidate(self, pid: int, score: float, reason: str = "") -> Candidate:
        return self.catalog.candidate(pid, score, now_ms=self.now_ms, new_days=self.new_days,
                                      popularity=self.lists.popularity.get(pid, 0), reason=reason)

    def purchased_categories(self) -> list[str]:
        return [c for c in dict.fromkeys(self.catalog.category_of(p) for p in self.session.purchased) if c]

    def reasons(self) -> ReasonContext:
        purchased: dict[str, str] = {}
        for pid in self.session.purchased:  # newest first: the latest purchase per category names it
            info = self.catalog.get(pid)
            if info and info.category:
                purchased.setdefault(info.category, info.name)
        return ReasonContext(viewed_categories=frozenset(self.session.categories), purchased=purchased,
                             complements=self.rules.complements)


def _with_reason(ctx: ServeContext, reasons: ReasonContext, c: Candidate, source: str) -> Candidate:
    return replace(c, reason=reason_for(c, source, reasons))


def _rank_score(rank: int, size: int) -> float:
    return 1.0 - rank / max(size, 1)


def cross_sell_candidates(ctx: ServeContext, floor: float) -> list[Candidate]:
    """Bestsellers of the categories that go with the user's purchases, at the bottom score ``floor``."""
    out = []
    reasons = ctx.reasons()
    for bought in ctx.purchased_categories():
        for comp in ctx.rules.complements.get(bought, ()):
            for pid in ctx.lists.bestsellers.get(comp, RankedList()).products[:CROSS_SELL_PER_CATEGORY]:
                out.append(_with_reason(ctx, reasons, ctx.candidate(pid, floor), SOURCE_CROSS_SELL))
    return out


def finish(ctx: ServeContext, candidates: Sequence[Candidate], n: int, *, skip_viewed: bool = False
           ) -> list[Candidate]:
    """Add cross-sell, drop duplicates and purchases (and, for fallback lists, what the user just
    viewed), re-rank with the session, keep ``n``."""
    floor = min((c.score for c in candidates), default=0.0)
    excluded = set(ctx.session.purchased) | (set(ctx.session.viewed) if skip_viewed else set())
    unique: dict[int, Candidate] = {}
    for c in [*candidates, *cross_sell_candidates(ctx, floor)]:
        if c.product_id not in excluded and c.product_id not in unique:
            unique[c.product_id] = c
    ranked = rerank(list(unique.values()), ctx.rules, session_categories=ctx.session.categories,
                    purchased_categories=ctx.purchased_categories())
    return ranked[:n]


def personalized(ctx: ServeContext, products: Sequence[int], scores: Sequence[float],
                 cached_reasons: Sequence[str] | None, n: int) -> list[Candidate]:
    """Tier 1 from a model list; the live reason wins unless it is the generic one and the list had better."""
    reasons = ctx.reasons()
    cached = list(cached_reasons or [])
    items = []
    for i, (pid, score) in enumerate(zip(products, scores)):
        c = _with_reason(ctx, reasons, ctx.candidate(int(pid), float(score)), SOURCE_MODEL)
        if c.reason == REASON_LIKE_YOU and i < len(cached) and cached[i]:
            c = replace(c, reason=str(cached[i]))
        items.append(c)
    return finish(ctx, items, n)


def category_tier(ctx: ServeContext, n: int) -> list[Candidate]:
    """Tier 2: bestsellers of the recent categories (the most recent leads), trending after them."""
    reasons = ctx.reasons()
    cats = [c for c in ctx.session.categories if c in ctx.lists.bestsellers][:TIER2_CATEGORIES]
    if not cats:
        return []
    items = []
    for i, cat in enumerate(cats):
        lst = ctx.lists.bestsellers[cat]
        for r, pid in enumerate(lst.products):
            score = (len(cats) - i) + _rank_score(r, len(lst))
            items.append(_with_reason(ctx, reasons, ctx.candidate(pid, score), SOURCE_POPULAR))
    for r, pid in enumerate(ctx.lists.trending.products):
        items.append(_with_reason(ctx, reasons, ctx.candidate(pid, _rank_score(r, len(ctx.lists.trending)) - 1.0),
                                  SOURCE_TRENDING))
    return finish(ctx, items, n, skip_viewed=True)


def interleave(trending: Sequence[int], new: Sequence[int], every: int, slots: int) -> list[tuple[int, str]]:
    """Trending with one new arrival after every ``every`` items, at most ``slots`` of them."""
    out: list[tuple[int, str]] = []
    new_left = list(new[:slots])
    for pid in trending:
        out.append((pid, SOURCE_TRENDING))
        if new_left and len(out) % (every + 1) == every:
            out.append((new_left.pop(0), SOURCE_NEW_ARRIVALS))
    out.extend((pid, SOURCE_NEW_ARRIVALS) for pid in new_left)
    return out


def trending_tier(ctx: ServeContext, n: int) -> list[Candidate]:
    """Tier 3: global trending and new arrivals ("Trending now" / "New arrival")."""
    reasons = ctx.reasons()
    every = max(2, n // max(ctx.new_arrival_slots, 1)) if ctx.new_arrival_slots else n + 1
    order = interleave(ctx.lists.trending.products, ctx.lists.new_arrivals.products, every,
                       ctx.new_arrival_slots)
    items = [_with_reason(ctx, reasons, ctx.candidate(pid, _rank_score(r, len(order))), source)
             for r, (pid, source) in enumerate(order)]
    return finish(ctx, items, n, skip_viewed=True)


def rerank_config(settings, complements: Mapping[str, Iterable[str]] | None = None) -> RerankConfig:
    """The re-ranking rules of the settings object."""
    comps = complements if complements is not None else settings.cross_sell_complements
    return RerankConfig(
        max_per_category=settings.max_per_category,
        out_of_stock=None if settings.rerank_out_of_stock == "keep" else settings.rerank_out_of_stock,
        margin_weight=settings.rerank_margin_weight, freshness_weight=settings.rerank_freshness_weight,
        new_days=settings.rerank_freshness_days, session_weight=settings.rerank_session_weight,
        cross_sell_weight=settings.rerank_cross_sell_weight,
        complements={k: tuple(v) for k, v in comps.items()},
    )

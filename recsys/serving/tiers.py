"""The serving tiers as pure functions: candidates in, re-ranked items with reasons out.

- Tier 1 ``personalized``: the model's list (cached or scored on the fly).
- Tier 2 ``category``: bestsellers of the categories the user browsed, most recent first.
- Tier 3 ``trending``: global trending with new arrivals every few slots.
Every tier adds cross-sell candidates after a purchase (bestsellers of the
categories that go with it), leaves out what the user just bought, and goes
through the rules of ``recsys.ranking.rerank`` with the user's session, applied
to columns (``rank_columns.rerank_positions``): only the n items returned become
Candidates. Reasons come from ``recsys.ranking.reasons``, from the list that
produced each item.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import islice

from recsys.constants import PURCHASE, REASON_LIKE_YOU
from recsys.ranking.merch_rules import (
    PIN, PROMOTE, REASON_FEATURED, MerchRule, adjusted_scores, blocked, place,
)
from recsys.ranking.rank_columns import rerank_positions
from recsys.ranking.reasons import (
    SOURCE_CROSS_SELL,
    SOURCE_MODEL,
    SOURCE_NEW_ARRIVALS,
    SOURCE_POPULAR,
    SOURCE_TRENDING,
    ReasonContext,
    impersonal,
    reason_for,
)
from recsys.ranking.rerank import Candidate, RerankConfig
from recsys.serving.catalog import CatalogSnapshot
from recsys.serving.fallbacks import FallbackLists, RankedList
from recsys.serving.filters import ItemFilter
from recsys.serving.session_state import SessionState

PERSONALIZED, CATEGORY, TRENDING = "personalized", "category", "trending"
TIER2_CATEGORIES = 3  # most recent categories a Tier-2 list draws from
CROSS_SELL_PER_CATEGORY = 3


@dataclass(frozen=True)
class ServeContext:
    """Everything the pure tiers need about one request (the user's reason context and
    purchased categories are worked out once, on first use)."""

    catalog: CatalogSnapshot
    lists: FallbackLists
    session: SessionState
    rules: RerankConfig
    now_ms: int
    new_days: int
    new_arrival_slots: int = 3
    seen_types: tuple[str, ...] = (PURCHASE,)  # RECSYS_EXCLUDE_SEEN
    personal_reasons: bool = True  # RECSYS_REASONS=personal: reasons may name the user's own products
    just_viewed: str | None = None  # a real-time model's list: the product it follows (``realtime.just_viewed``)
    item_filter: ItemFilter | None = None  # the request's filters (``recsys.serving.filters``): narrow every tier
    merch: tuple[MerchRule, ...] = ()  # the live merchandising rules (``recsys.ranking.merch_rules``)

    def attributes(self, product_id: int) -> tuple[str, float | None]:
        """(category, price) of a product, what a merchandising rule matches on."""
        info = self.catalog.get(product_id)
        return (info.category, info.price) if info is not None else ("", None)

    def already_seen(self) -> set[int]:
        return self.session.already_seen(self.seen_types)

    def candidate(self, pid: int, score: float, reason: str = "") -> Candidate:
        return self.catalog.candidate(pid, score, now_ms=self.now_ms, new_days=self.new_days,
                                      popularity=self.lists.popularity.get(pid, 0), reason=reason)

    def purchased_categories(self) -> list[str]:
        return self._purchased_categories

    def reasons(self) -> ReasonContext:
        return self._reasons

    @cached_property
    def _purchased_categories(self) -> list[str]:
        return [c for c in dict.fromkeys(self.catalog.category_of(p) for p in self.session.purchased) if c]

    @cached_property
    def _reasons(self) -> ReasonContext:
        purchased: dict[str, str] = {}
        for pid in self.session.purchased:  # newest first: the latest purchase per category names it
            info = self.catalog.get(pid)
            if info and info.category:
                purchased.setdefault(info.category, info.name)
        return ReasonContext(viewed_categories=frozenset(self.session.categories), just_viewed=self.just_viewed,
                             purchased=purchased, complements=self.rules.complements, personal=self.personal_reasons)


def _rank_score(rank: int, size: int) -> float:
    return 1.0 - rank / max(size, 1)


def cross_sell_products(ctx: ServeContext) -> list[int]:
    """Bestsellers of the categories that go with the user's purchases (their source: ``SOURCE_CROSS_SELL``)."""
    return [pid for bought in ctx.purchased_categories() for comp in ctx.rules.complements.get(bought, ())
            for pid in ctx.lists.bestsellers.get(comp, RankedList()).products[:CROSS_SELL_PER_CATEGORY]]


def finish(ctx: ServeContext, products: Sequence[int], scores: Sequence[float], sources: Sequence[str], n: int,
           *, cached_reasons: Sequence[str] = (), skip_viewed: bool = False) -> list[Candidate]:
    """Add cross-sell (at the lowest score), drop duplicates and seen products (and, for fallback lists,
    what the user just viewed), re-rank with the session, keep ``n``.

    ``sources[i]`` is the list ``products[i]`` came from. Re-ranking reads no reason, so only
    the items returned get one: ``reason_for`` their source, or ``cached_reasons[i]`` (when
    there is one) in place of the generic "Customers like you".
    """
    floor = min(scores, default=0.0)
    excluded = ctx.already_seen() | (set(ctx.session.viewed) if skip_viewed else set())
    first: dict[int, int] = {}  # product id -> position of its first occurrence
    f, merch = ctx.item_filter, ctx.merch
    for i, pid in enumerate([*products, *cross_sell_products(ctx)]):
        if pid not in excluded and pid not in first and (f is None or f.accepts(ctx.catalog, pid)) and (
                not merch or not blocked(merch, pid, ctx.attributes)):
            first[pid] = i
    pids, origins = list(first), list(first.values())
    ranked = [scores[i] if i < len(products) else floor for i in origins]
    if merch:  # the rules, after the model's ranking and before re-ranking and diversity
        ranked = adjusted_scores(merch, pids, ranked, ctx.attributes)
    inputs = ctx.catalog.rank_inputs(pids, ranked, now_ms=ctx.now_ms, new_days=ctx.new_days)
    positions, final = rerank_positions(inputs, ctx.rules, session_categories=ctx.session.categories,
                                        purchased_categories=ctx.purchased_categories(), limit=n)
    out = []
    for k in positions:
        c = Candidate(pids[k], final[k], inputs.categories[k], inputs.in_stock[k], inputs.margins[k],
                      inputs.is_new[k], "", inputs.age_days[k], ctx.lists.popularity.get(pids[k], 0))
        c.reason = _reason(ctx, c, origins[k], sources, cached_reasons)  # built just above: set in place
        out.append(c)
    if any(r.action in (PIN, PROMOTE) for r in merch):
        out = place(out, n, merch, _rule_pool(ctx, pids, ranked, out, excluded), ctx.attributes, _featured)
    return out


def _featured(c: Candidate) -> Candidate:
    return dataclasses.replace(c, reason=REASON_FEATURED)


def _rule_pool(ctx: ServeContext, pids: Sequence[int], scores: Sequence[float], out: Sequence[Candidate],
               excluded: set[int]) -> list[Candidate]:
    """What a pin or promote rule may bring into the list, best first: the tier's other candidates, then the
    rules' own products, their categories' bestsellers, trending; in stock, passing the filter, not blocked,
    not seen."""
    shown = {c.product_id for c in out}
    floor = min((c.score for c in out), default=0.0)
    order = sorted(range(len(pids)), key=lambda k: -scores[k])
    found = [(pids[k], scores[k]) for k in order]
    for r in ctx.merch:
        if r.action in (PIN, PROMOTE):
            found += [(p, floor) for p in r.products]
            found += [(p, floor) for c in sorted(r.categories)
                      for p in ctx.lists.bestsellers.get(c, RankedList()).products]
    found += [(p, floor) for p in ctx.lists.trending.products]
    f, pool, seen = ctx.item_filter, [], set(shown)
    for pid, score in found:
        info = ctx.catalog.get(pid)
        if pid in seen or pid in excluded or info is None or not info.in_stock:
            continue
        seen.add(pid)
        if (f is None or f.accepts_info(pid, info)) and not blocked(ctx.merch, pid, ctx.attributes):
            pool.append(ctx.candidate(pid, score))
    return pool


def _reason(ctx: ServeContext, c: Candidate, i: int, sources: Sequence[str], cached_reasons: Sequence[str]) -> str:
    """The reason of the item from position ``i`` of a tier's list (past its end: a cross-sell item)."""
    if i >= len(sources):
        return reason_for(c, SOURCE_CROSS_SELL, ctx.reasons())
    reason = reason_for(c, sources[i], ctx.reasons())
    if reason == REASON_LIKE_YOU and i < len(cached_reasons) and cached_reasons[i]:
        cached = str(cached_reasons[i])  # written by precompute or an earlier request: may name a product
        return cached if ctx.personal_reasons else impersonal(cached)
    return reason


def personalized(ctx: ServeContext, products: Sequence[int], scores: Sequence[float],
                 cached_reasons: Sequence[str] | None, n: int) -> list[Candidate]:
    """Tier 1 from a model list; the live reason wins unless it is the generic one and the list had better."""
    size = min(len(products), len(scores))
    return finish(ctx, list(map(int, islice(products, size))), list(map(float, islice(scores, size))),
                  [SOURCE_MODEL] * size, n, cached_reasons=cached_reasons or ())


def tier2_categories(ctx: ServeContext) -> list[str]:
    """The categories Tier 2 draws from: the user's recent ones; with a category filter, those of them the filter
    allows, then the filter's own (so a filtered request still has bestsellers of what it asked for)."""
    f = ctx.item_filter
    if f is None or not f.categories:
        return list(ctx.session.categories)
    return list(dict.fromkeys([*(c for c in ctx.session.categories if f.category_ok(c)), *sorted(f.categories)]))


def category_tier(ctx: ServeContext, n: int) -> list[Candidate]:
    """Tier 2: bestsellers of the recent categories (the most recent leads), trending after them."""
    cats = [c for c in tier2_categories(ctx) if c in ctx.lists.bestsellers][:TIER2_CATEGORIES]
    if not cats:
        return []
    products: list[int] = []
    scores: list[float] = []
    for i, cat in enumerate(cats):
        lst = ctx.lists.bestsellers[cat]
        products += lst.products
        scores += [(len(cats) - i) + _rank_score(r, len(lst)) for r in range(len(lst))]
    popular = len(products)
    trending = ctx.lists.trending
    products += trending.products
    scores += [_rank_score(r, len(trending)) - 1.0 for r in range(len(trending))]
    sources = [SOURCE_POPULAR] * popular + [SOURCE_TRENDING] * len(trending)
    return finish(ctx, products, scores, sources, n, skip_viewed=True)


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
    every = max(2, n // max(ctx.new_arrival_slots, 1)) if ctx.new_arrival_slots else n + 1
    order = interleave(ctx.lists.trending.products, ctx.lists.new_arrivals.products, every,
                       ctx.new_arrival_slots)
    return finish(ctx, [pid for pid, _ in order], [_rank_score(r, len(order)) for r in range(len(order))],
                  [source for _, source in order], n, skip_viewed=True)


def fill(items: Sequence[Candidate], more: Sequence[Candidate], n: int) -> list[Candidate]:
    """``items``, then the products of ``more`` not among them (each keeps its reason), ``n`` at most: how a tier
    that a filter left short is filled by the next."""
    taken = {c.product_id for c in items}
    return [*items, *(c for c in more if c.product_id not in taken)][:n]


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

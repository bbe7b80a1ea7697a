"""The serving tiers as they were before the cache-hit path was made cheaper (commit 8651939): the oracle.

A frozen copy of ``recsys/serving/tiers.py`` (``personalized``, ``finish``, the fallback
tiers), ``CatalogSnapshot.candidate``, ``recsys/ranking/reasons.py`` and the online
``rerank`` with its rules, straight and slow: every item becomes a Candidate, is
copied by ``dataclasses.replace`` for its reason and by every boost, and the whole
list is re-ranked. It reads only the plain fields of ``ServeContext``, ``CatalogSnapshot``,
``FallbackLists``, ``SessionState`` and ``RerankConfig``, so that it keeps answering
as before whatever the production code caches or precomputes.
``test_api_tiers_reference.py`` checks that the production tiers give the same items,
order, scores (to the bit) and reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from recsys.constants import (
    MS_PER_DAY,
    REASON_GOES_WITH,
    REASON_LIKE_YOU,
    REASON_NEW_ARRIVAL,
    REASON_POPULAR_IN,
    REASON_TRENDING,
    REASON_VIEWED_CATEGORY,
)
from recsys.ranking.rerank import Candidate
from recsys.serving.fallbacks import RankedList

TIER2_CATEGORIES = 3
CROSS_SELL_PER_CATEGORY = 3
NEW_ARRIVAL_MAX_INTERACTIONS = 20


# --- ServeContext.candidate / purchased_categories / reasons, CatalogSnapshot.candidate ----------
def candidate(ctx, pid: int, score: float, reason: str = "") -> Candidate:
    popularity = ctx.lists.popularity.get(pid, 0)
    info = ctx.catalog.products.get(pid)
    if info is None:
        return Candidate(product_id=pid, score=float(score), popularity=popularity, reason=reason)
    age = None if info.created_at_ms is None else max(0.0, (ctx.now_ms - info.created_at_ms) / MS_PER_DAY)
    return Candidate(product_id=pid, score=float(score), category=info.category, in_stock=info.in_stock,
                     margin=info.margin, is_new=age is not None and age < ctx.new_days, reason=reason,
                     age_days=age, popularity=popularity)


def _category_of(ctx, pid: int) -> str:
    info = ctx.catalog.products.get(pid)
    return info.category if info else ""


def purchased_categories(ctx) -> list[str]:
    return [c for c in dict.fromkeys(_category_of(ctx, p) for p in ctx.session.purchased) if c]


def reason_context(ctx) -> dict:
    purchased: dict[str, str] = {}
    for pid in ctx.session.purchased:
        info = ctx.catalog.products.get(pid)
        if info and info.category:
            purchased.setdefault(info.category, info.name)
    goes_with: dict[str, str] = {}
    for bought_category, product_name in purchased.items():
        for comp in ctx.rules.complements.get(bought_category, ()):
            goes_with.setdefault(comp, product_name)
    return {"viewed": frozenset(ctx.session.categories), "goes_with": goes_with}


# --- recsys/ranking/reasons.py ------------------------------------------------------------
def reason_for(item: Candidate, source: str, rc: dict) -> str:
    if source in ("model", "cross_sell"):
        if item.category in rc["goes_with"]:
            return REASON_GOES_WITH.format(product=rc["goes_with"][item.category])
        if item.category and item.category in rc["viewed"]:
            return REASON_VIEWED_CATEGORY.format(category=item.category)
        if item.is_new and item.popularity < NEW_ARRIVAL_MAX_INTERACTIONS:
            return REASON_NEW_ARRIVAL
        return REASON_LIKE_YOU
    if source == "popular":
        return REASON_POPULAR_IN.format(category=item.category) if item.category else REASON_TRENDING
    if source == "trending":
        return REASON_TRENDING
    if source == "new_arrivals":
        return REASON_NEW_ARRIVAL
    raise ValueError(source)


# --- recsys/ranking/rerank.py: the online rules ---------------------------------------------
def _spread(items: Sequence[Candidate]) -> float:
    if not items:
        return 1.0
    scores = [c.score for c in items]
    spread = max(scores) - min(scores)
    return spread if spread > 0 else 1.0


def _boost(items: Sequence[Candidate], amounts: Sequence[float], weight: float) -> list[Candidate]:
    if not weight or not items:
        return list(items)
    unit = weight * _spread(items)
    return sorted((c.with_score(c.score + unit * a) if a else c for c, a in zip(items, amounts)),
                  key=lambda c: -c.score)


def diversify(items: Sequence[Candidate], max_per_category: int) -> list[Candidate]:
    seen: dict[str, int] = {}
    rounds: list[int] = []
    for c in items:
        n = seen.get(c.category, 0)
        seen[c.category] = n + 1
        rounds.append(n // max_per_category)
    order = sorted(range(len(items)), key=lambda i: (rounds[i], i))
    return [items[i] for i in order]


def demote_out_of_stock(items: Sequence[Candidate], mode: str) -> list[Candidate]:
    available = [c for c in items if c.in_stock]
    if mode == "drop":
        return available
    return available + [c for c in items if not c.in_stock]


def boost_margin(items: Sequence[Candidate], weight: float) -> list[Candidate]:
    top = max((c.margin for c in items), default=0.0)
    if top <= 0:
        return list(items)
    return _boost(items, [max(c.margin, 0.0) / top for c in items], weight)


def boost_freshness(items: Sequence[Candidate], weight: float, new_days: int) -> list[Candidate]:
    def amount(c: Candidate) -> float:
        if c.age_days is None:
            return 1.0 if c.is_new else 0.0
        return max(0.0, 1.0 - max(c.age_days, 0.0) / new_days)

    return _boost(items, [amount(c) for c in items], weight)


def boost_session(items: Sequence[Candidate], categories: Iterable[str], weight: float) -> list[Candidate]:
    wanted = set(categories)
    return _boost(items, [1.0 if c.category in wanted else 0.0 for c in items], weight)


def cross_sell(items: Sequence[Candidate], purchased: Iterable[str], complements: Mapping[str, Sequence[str]],
               weight: float) -> list[Candidate]:
    bought = {cat for cat in purchased if cat in complements}
    up = {comp for cat in bought for comp in complements[cat]}
    return _boost(items, [(1.0 if c.category in up else 0.0) - (1.0 if c.category in bought else 0.0)
                          for c in items], weight)


def rerank(items: Sequence[Candidate], rules, *, session_categories: Iterable[str] = (),
           purchased_categories: Iterable[str] = ()) -> list[Candidate]:
    out = list(items)
    if rules.cross_sell_weight and rules.complements:
        out = cross_sell(out, purchased_categories, rules.complements, rules.cross_sell_weight)
    if rules.session_weight:
        out = boost_session(out, session_categories, rules.session_weight)
    if rules.margin_weight:
        out = boost_margin(out, rules.margin_weight)
    if rules.freshness_weight:
        out = boost_freshness(out, rules.freshness_weight, rules.new_days)
    if rules.out_of_stock:
        head = demote_out_of_stock(out, rules.out_of_stock)
        n_available = sum(1 for c in out if c.in_stock)
        head, tail = head[:n_available], head[n_available:]
    else:
        head, tail = out, []
    if rules.max_per_category:
        head, tail = diversify(head, rules.max_per_category), diversify(tail, rules.max_per_category)
    return head + tail


# --- recsys/serving/tiers.py ----------------------------------------------------------------------
def _with_reason(rc: dict, c: Candidate, source: str) -> Candidate:
    return replace(c, reason=reason_for(c, source, rc))


def _rank_score(rank: int, size: int) -> float:
    return 1.0 - rank / max(size, 1)


def cross_sell_candidates(ctx, floor: float) -> list[Candidate]:
    out = []
    rc = reason_context(ctx)
    for bought in purchased_categories(ctx):
        for comp in ctx.rules.complements.get(bought, ()):
            for pid in ctx.lists.bestsellers.get(comp, RankedList()).products[:CROSS_SELL_PER_CATEGORY]:
                out.append(_with_reason(rc, candidate(ctx, pid, floor), "cross_sell"))
    return out


def finish(ctx, candidates: Sequence[Candidate], n: int, *, skip_viewed: bool = False) -> list[Candidate]:
    floor = min((c.score for c in candidates), default=0.0)
    excluded = set(ctx.session.purchased) | (set(ctx.session.viewed) if skip_viewed else set())
    unique: dict[int, Candidate] = {}
    for c in [*candidates, *cross_sell_candidates(ctx, floor)]:
        if c.product_id not in excluded and c.product_id not in unique:
            unique[c.product_id] = c
    ranked = rerank(list(unique.values()), ctx.rules, session_categories=ctx.session.categories,
                    purchased_categories=purchased_categories(ctx))
    return ranked[:n]


def personalized(ctx, products: Sequence[int], scores: Sequence[float], cached_reasons: Sequence[str] | None,
                 n: int) -> list[Candidate]:
    rc = reason_context(ctx)
    cached = list(cached_reasons or [])
    items = []
    for i, (pid, score) in enumerate(zip(products, scores)):
        c = _with_reason(rc, candidate(ctx, int(pid), float(score)), "model")
        if c.reason == REASON_LIKE_YOU and i < len(cached) and cached[i]:
            c = replace(c, reason=str(cached[i]))
        items.append(c)
    return finish(ctx, items, n)


def category_tier(ctx, n: int) -> list[Candidate]:
    rc = reason_context(ctx)
    cats = [c for c in ctx.session.categories if c in ctx.lists.bestsellers][:TIER2_CATEGORIES]
    if not cats:
        return []
    items = []
    for i, cat in enumerate(cats):
        lst = ctx.lists.bestsellers[cat]
        for r, pid in enumerate(lst.products):
            score = (len(cats) - i) + _rank_score(r, len(lst))
            items.append(_with_reason(rc, candidate(ctx, pid, score), "popular"))
    for r, pid in enumerate(ctx.lists.trending.products):
        items.append(_with_reason(rc, candidate(ctx, pid, _rank_score(r, len(ctx.lists.trending)) - 1.0),
                                  "trending"))
    return finish(ctx, items, n, skip_viewed=True)


def interleave(trending: Sequence[int], new: Sequence[int], every: int, slots: int) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    new_left = list(new[:slots])
    for pid in trending:
        out.append((pid, "trending"))
        if new_left and len(out) % (every + 1) == every:
            out.append((new_left.pop(0), "new_arrivals"))
    out.extend((pid, "new_arrivals") for pid in new_left)
    return out


def trending_tier(ctx, n: int) -> list[Candidate]:
    rc = reason_context(ctx)
    every = max(2, n // max(ctx.new_arrival_slots, 1)) if ctx.new_arrival_slots else n + 1
    order = interleave(ctx.lists.trending.products, ctx.lists.new_arrivals.products, every, ctx.new_arrival_slots)
    items = [_with_reason(rc, candidate(ctx, pid, _rank_score(r, len(order))), source)
             for r, (pid, source) in enumerate(order)]
    return finish(ctx, items, n, skip_viewed=True)

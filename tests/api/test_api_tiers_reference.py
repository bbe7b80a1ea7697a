"""The serving tiers answer exactly as the frozen reference (``tiers_reference.py``) on a random corpus.

Each case is a small shop drawn from a seed: a catalog with unknown, out-of-stock,
new, future-dated and undated products, empty categories and tied margins; fallback
lists; a session with categories, views and purchases (some of unknown products);
re-ranking rules with every weight on or off, every stock mode, with and without a
diversity cap and complements; a cached model list with duplicates, ties, negative
and flat scores and partial cached reasons; and a list length (a few lists have fewer scores than products). The three tiers must
return the same Candidates as the reference: ids, order, scores to the bit, reasons
and the other attributes.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import astuple

import pytest

import tiers_reference as ref
from recsys.constants import MS_PER_DAY, REASON_LIKE_YOU
from recsys.ranking.rerank import RerankConfig
from recsys.serving.catalog import CatalogSnapshot
from recsys.serving.fallbacks import lists_from_redis
from recsys.serving.session_state import SessionState
from recsys.serving.tiers import ServeContext, category_tier, personalized, rerank_config, trending_tier
from recsys.settings import Settings

NOW_MS = 1_790_000_000_000
CATEGORIES = ("Shoes", "Fashion", "Electronics", "Books", "Home", "Kitchen")
UNKNOWN = tuple(range(9000, 9012))  # product ids the catalog does not know
CASES = 400


def _created(rng: random.Random, new_days: int) -> int | None:
    kind = rng.random()
    if kind < 0.15:
        return None
    if kind < 0.2:
        return NOW_MS + rng.randint(1, MS_PER_DAY)  # clock skew: created "in the future"
    if kind < 0.3:
        return NOW_MS - new_days * MS_PER_DAY + rng.choice((-1, 0, 1))  # on the new/old boundary
    return NOW_MS - rng.randint(0, 40) * MS_PER_DAY - rng.randint(0, MS_PER_DAY)


def _catalog(rng: random.Random, new_days: int) -> CatalogSnapshot:
    margins = rng.choice(("zero", "mixed", "tied"))
    rows = []
    for pid in range(1, rng.randint(5, 160)):
        margin = {"zero": 0.0, "tied": rng.choice((0.1, 0.3)),
                  "mixed": rng.choice((0.0, -0.1, 0.25, round(rng.uniform(0, 0.6), 2)))}[margins]
        rows.append({"product_id": pid, "name": f"item {pid}", "category": rng.choice(CATEGORIES + ("",)),
                     "price": 1.0, "margin": margin, "in_stock": rng.choice((True, True, True, False, None)),
                     "created_at": _created(rng, new_days)})
    return CatalogSnapshot.from_rows(rows)


def _ranked(rng: random.Random, universe: list[int], size: int) -> dict:
    products = rng.sample(universe, min(size, len(universe)))
    n = len(products)
    return {"products": products, "scores": [float(n - i) for i in range(n)],
            "popularity": [rng.randint(0, 40) for _ in products]}


def _lists(rng: random.Random, universe: list[int]):
    best = {c: _ranked(rng, universe, rng.randint(0, 40)) for c in rng.sample(CATEGORIES + ("Toys",), 4)}
    return lists_from_redis({"trending": _ranked(rng, universe, rng.choice((0, 5, 60))),
                             "new_arrivals": _ranked(rng, universe, rng.choice((0, 3, 20))),
                             "categories": list(CATEGORIES), "bestsellers": best})


def _rules(rng: random.Random) -> RerankConfig:
    if rng.random() < 0.25:
        return rerank_config(Settings())  # the production defaults
    comps = {c: tuple(rng.sample(CATEGORIES + ("Toys",), rng.randint(0, 3))) for c in rng.sample(CATEGORIES, 3)}
    return RerankConfig(max_per_category=rng.choice((None, 1, 2, 3, 5)),
                        out_of_stock=rng.choice((None, "demote", "drop")),
                        margin_weight=rng.choice((0.0, 0.05, 0.5, 2.0)),
                        freshness_weight=rng.choice((0.0, 0.1, 1.0)), new_days=rng.choice((1, 7, 14)),
                        session_weight=rng.choice((0.0, 0.3, 1.5)), cross_sell_weight=rng.choice((0.0, 0.5, 2.0)),
                        complements=rng.choice((comps, comps, {})))


def _session(rng: random.Random, universe: list[int]) -> SessionState:
    return SessionState(categories=tuple(rng.sample(CATEGORIES + ("Toys",), rng.randint(0, 5))),
                        viewed=tuple(rng.sample(universe, min(len(universe), rng.choice((0, 3, 20))))),
                        purchased=tuple(rng.sample(universe, min(len(universe), rng.choice((0, 0, 1, 2, 5))))),
                        exists=True)


def _scores(rng: random.Random, n: int) -> list[float]:
    kind = rng.choice(("ties", "rounded", "flat", "negative", "descending"))
    if kind == "ties":
        return [rng.choice((0.5, 0.25, 0.125)) for _ in range(n)]
    if kind == "rounded":
        return [round(rng.gauss(1.0, 0.3), 2) for _ in range(n)]
    if kind == "flat":
        return [0.7] * n
    if kind == "negative":
        return [rng.uniform(-2.0, 0.5) for _ in range(n)]
    return sorted((round(rng.uniform(0, 3), 6) for _ in range(n)), reverse=True)


def _cached_reasons(rng: random.Random, products: list[int]) -> list[str] | None:
    kind = rng.choice(("none", "full", "short", "holes"))
    if kind == "none":
        return None
    texts = (REASON_LIKE_YOU, "Because you viewed Shoes", "Picked for you", "")
    reasons = [rng.choice(texts) for _ in products]
    return reasons[: len(reasons) // 2] if kind == "short" else reasons


def make_case(seed: int) -> dict:
    rng = random.Random(seed)
    new_days = rng.choice((1, 7, 14))
    catalog = _catalog(rng, new_days)
    universe = sorted(catalog.products) + list(UNKNOWN)
    ctx = ServeContext(catalog=catalog, lists=_lists(rng, universe), session=_session(rng, universe),
                       rules=_rules(rng), now_ms=NOW_MS, new_days=new_days, new_arrival_slots=rng.choice((0, 1, 3)))
    size = rng.choice((0, 1, 2, 5, 30, 100))
    products = rng.choices(universe, k=size) if rng.random() < 0.3 else rng.sample(universe, min(size, len(universe)))
    scores = _scores(rng, len(products))
    if rng.random() < 0.1:  # a malformed cached list: fewer scores than products (and reasons)
        scores = scores[: len(scores) // 2]
    return {"ctx": ctx, "products": products, "scores": scores, "reasons": _cached_reasons(rng, products),
            "n": rng.choice((1, 3, 10, 50, 200))}


def answer(items) -> list[tuple]:
    """Everything a Candidate carries, the score as its exact bits."""
    return [(*astuple(c), c.score.hex()) for c in items]


def run_tiers(module, case: dict) -> dict[str, list[tuple]]:
    ctx, n = case["ctx"], case["n"]
    return {"personalized": answer(module.personalized(ctx, case["products"], case["scores"], case["reasons"], n)),
            "category": answer(module.category_tier(ctx, n)), "trending": answer(module.trending_tier(ctx, n))}


class _Production:
    personalized, category_tier, trending_tier = staticmethod(personalized), staticmethod(category_tier), \
        staticmethod(trending_tier)


CORPUS = [make_case(seed) for seed in range(CASES)]


@pytest.mark.parametrize("start", range(0, CASES, 50))
def test_tiers_answer_as_the_reference(start):
    for seed in range(start, start + 50):
        case = CORPUS[seed]
        assert run_tiers(_Production, case) == run_tiers(ref, case), f"case {seed}"


def test_the_corpus_reaches_every_rule():
    """The comparison above means something only if the corpus exercises what could differ."""
    seen: Counter = Counter()
    for case in CORPUS:
        ctx = case["ctx"]
        items = ref.personalized(ctx, case["products"], case["scores"], case["reasons"], case["n"])
        listed = set(case["products"])
        seen["cross-sell item returned"] += any(c.product_id not in listed for c in items)
        seen["cached reason kept"] += any(c.reason in ("Picked for you",) for c in items)
        seen["out of stock returned"] += any(not c.in_stock for c in items)
        seen["unknown product returned"] += any(c.product_id in UNKNOWN for c in items)
        seen["tied scores returned"] += len({c.score for c in items}) < len(items)
        seen["order differs from the scores"] += [c.product_id for c in items] != [
            c.product_id for c in sorted(items, key=lambda c: -c.score)]
        seen["boosted score"] += any(c.score not in case["scores"] for c in items if c.product_id in listed)
        seen["new arrival reason"] += any(c.reason == "New arrival" for c in items)
        seen["category tier answered"] += bool(ref.category_tier(ctx, case["n"]))
        seen["trending tier answered"] += bool(ref.trending_tier(ctx, case["n"]))
    assert min(seen.values()) >= 30, seen
    assert len(seen) == 10, seen


def test_a_cached_reason_never_names_a_cross_sell_item():
    """A cached list with more reasons than scores: the reasons past the scores belong to no item."""
    rows = [{"product_id": pid, "name": f"item {pid}", "category": cat, "price": 1.0, "margin": 0.0,
             "in_stock": True, "created_at": None} for pid, cat in ((1, "Shoes"), (2, "Home"), (3, "Books"))]
    lists = lists_from_redis({"bestsellers": {"Fashion": {"products": [3], "scores": [1.0]}}})
    ctx = ServeContext(catalog=CatalogSnapshot.from_rows(rows), lists=lists,
                       session=SessionState(purchased=(2,), exists=True),
                       rules=RerankConfig(complements={"Home": ("Fashion",)}), now_ms=NOW_MS, new_days=14)
    case = {"ctx": ctx, "products": [1, 2], "scores": [1.0], "reasons": ["Picked for you"] * 3, "n": 10}
    production = run_tiers(_Production, case)["personalized"]
    assert production == run_tiers(ref, case)["personalized"]
    assert [(item[0], item[6]) for item in production] == [(1, "Picked for you"), (3, REASON_LIKE_YOU)]

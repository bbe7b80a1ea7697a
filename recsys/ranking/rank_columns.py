"""The re-ranking rules on columns: what each rule adds to every score, and the order that results.

``recsys.ranking.rerank`` states the rules over lists of ``Candidate``; this module is
their arithmetic, shared by both forms. ``rerank_positions`` applies them to a list
given as columns (``RankInputs``: item i at position i) and answers positions and
scores, so that a caller that needs only the first few items (the API) builds objects
for those alone. It does exactly what the rules do to a list of items: the same
additions in the same order, the same stable sorts (tested against them).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recsys.ranking.rerank import Candidate, RerankConfig


@dataclass(frozen=True, slots=True)
class RankInputs:
    """What the rules read about a list, one sequence per attribute (item i at position i)."""

    scores: Sequence[float]
    categories: Sequence[str]
    in_stock: Sequence[bool]
    margins: Sequence[float]
    is_new: Sequence[bool]
    age_days: Sequence[float | None]

    @classmethod
    def of(cls, items: Sequence[Candidate]) -> RankInputs:
        return cls([c.score for c in items], [c.category for c in items], [c.in_stock for c in items],
                   [c.margin for c in items], [c.is_new for c in items], [c.age_days for c in items])


def score_spread(scores: Sequence[float]) -> float:
    """The range of ``scores``; 1.0 for an empty or flat list so that boosts still act."""
    if not scores:
        return 1.0
    spread = max(scores) - min(scores)
    return spread if spread > 0 else 1.0


def diversified_order(categories: Sequence[str], max_per_category: int, limit: int | None = None) -> list[int]:
    """Positions in diversified order: the n-th item of a category goes to round ``n // max_per_category``,
    rounds in order, the original order inside a round. With a ``limit``, the first ``limit`` of them:
    the scan stops once round 0 has that many (they come first, and no later item joins them ahead)."""
    seen: dict[str, int] = {}
    rounds: list[list[int]] = [[]]
    first = rounds[0]
    for i, category in enumerate(categories):
        n = seen.get(category, 0)
        seen[category] = n + 1
        r = n // max_per_category
        if r == len(rounds):
            rounds.append([])
        rounds[r].append(i)
        if len(first) == limit:
            break
    return [i for positions in rounds for i in positions][:limit]


# --- each boost's amounts (max() is written out: a call per item costs more than the rest) ----
def margin_amounts(margins: Sequence[float], order: Iterable[int] | None = None) -> list[float] | None:
    """margin / the highest margin, taken in ``order`` (the list's: with a NaN margin ``max`` depends
    on it); None when no margin is positive (the rule does nothing)."""
    top = max(margins if order is None else map(margins.__getitem__, order), default=0.0)
    if top <= 0:
        return None
    return [(0.0 if m < 0.0 else m) / top for m in margins]  # max(m, 0.0) / top


def freshness_amounts(age_days: Sequence[float | None], is_new: Sequence[bool], new_days: int) -> list[float]:
    """``max(0, 1 - age/new_days)`` when the age is known, else 1 for ``is_new`` items."""
    return [(1.0 if new else 0.0) if age is None
            else (x if (x := 1.0 - (0.0 if age < 0.0 else age) / new_days) > 0.0 else 0.0)
            for age, new in zip(age_days, is_new)]


def session_amounts(categories: Sequence[str], session_categories: Iterable[str]) -> list[float]:
    wanted = set(session_categories)
    return [1.0 if c in wanted else 0.0 for c in categories]


def cross_sell_amounts(categories: Sequence[str], purchased_categories: Iterable[str],
                       complements: Mapping[str, Sequence[str]]) -> list[float]:
    """+1 for the complements of purchased categories, -1 for the purchased categories (with complements)."""
    bought = {cat for cat in purchased_categories if cat in complements}
    up = {comp for cat in bought for comp in complements[cat]}
    return [(1.0 if c in up else 0.0) - (1.0 if c in bought else 0.0) for c in categories]


class _Ranking:
    """The list's order (``order``: positions) and every position's current score.

    ``boost`` does to the list in ``order`` what a boost rule does to a list of items: add
    ``weight * spread * amount`` (nothing where the amount is 0), then sort stably by the new
    score. ``ordered`` records whether ``order`` is sorted by the scores, so that a boost with
    nothing to add, which would only sort it again (a stable sort of a sorted list changes
    nothing), is skipped; a NaN score has no order, so then the sort is done.
    """

    def __init__(self, scores: Sequence[float]):
        self.scores = list(scores)
        self.order = list(range(len(self.scores)))
        self.ordered = False

    def boost(self, amounts: Sequence[float] | None, weight: float) -> None:
        if not weight or not self.order or amounts is None or (self.ordered and not any(amounts)):
            return
        unit = weight * score_spread(list(map(self.scores.__getitem__, self.order)))
        self.scores = scores = [s + unit * a if a else s for s, a in zip(self.scores, amounts)]
        self.order.sort(key=list(map(operator.neg, scores)).__getitem__)
        self.ordered = not any(map(math.isnan, scores))


def rerank_positions(
    inputs: RankInputs,
    rules: RerankConfig,
    *,
    session_categories: Iterable[str] = (),
    purchased_categories: Iterable[str] = (),
    limit: int | None = None,
) -> tuple[list[int], list[float]]:
    """``rerank`` on columns: the positions in re-ranked order (dropped ones left out; only the first
    ``limit`` when given), and every position's new score."""
    ranking = _Ranking(inputs.scores)
    if rules.cross_sell_weight and rules.complements:
        ranking.boost(cross_sell_amounts(inputs.categories, purchased_categories, rules.complements),
                      rules.cross_sell_weight)
    if rules.session_weight:
        ranking.boost(session_amounts(inputs.categories, session_categories), rules.session_weight)
    if rules.margin_weight:
        ranking.boost(margin_amounts(inputs.margins, ranking.order), rules.margin_weight)
    if rules.freshness_weight:
        ranking.boost(freshness_amounts(inputs.age_days, inputs.is_new, rules.new_days), rules.freshness_weight)
    stock = inputs.in_stock
    head = [i for i in ranking.order if stock[i]] if rules.out_of_stock else ranking.order
    head = _diversified(inputs.categories, head, rules.max_per_category, limit)
    if rules.out_of_stock == "demote" and (limit is None or len(head) < limit):
        tail = [i for i in ranking.order if not stock[i]]
        head += _diversified(inputs.categories, tail, rules.max_per_category,
                             None if limit is None else limit - len(head))
    return head, ranking.scores


def _diversified(categories: Sequence[str], positions: list[int], max_per_category: int | None,
                 limit: int | None) -> list[int]:
    """``positions`` reordered by the diversity rule (when on), the first ``limit`` of them."""
    if not max_per_category:
        return positions[:limit]
    return [positions[k] for k in diversified_order([categories[i] for i in positions], max_per_category, limit)]

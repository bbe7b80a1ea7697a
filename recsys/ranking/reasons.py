"""Why an item is recommended: a pure choice from what produced it and what the user did.

The source says which list an item came from (the model, a fallback list, a
cross-sell rule). For model items the most specific true reason wins, in this
order: a real-time model's list follows the product the user just viewed >
it goes with a product the user bought > the user recently viewed its
category > it is a new product with few interactions > "Customers like you
also bought...". Texts are the ``constants.REASON_*`` templates. With
``ReasonContext.personal`` off (``RECSYS_REASONS=generic``) the same rules give
texts that never name the user's own products ("Goes with your recent purchase",
"Because of what you just viewed"), and ``impersonal`` turns a stored text into one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from recsys.constants import (
    REASON_GOES_WITH,
    REASON_GOES_WITH_GENERIC,
    REASON_JUST_VIEWED,
    REASON_JUST_VIEWED_GENERIC,
    REASON_LIKE_YOU,
    REASON_NEW_ARRIVAL,
    REASON_POPULAR_IN,
    REASON_TRENDING,
    REASON_VIEWED_CATEGORY,
)
from recsys.ranking.rerank import Candidate

SOURCE_MODEL = "model"
SOURCE_CROSS_SELL = "cross_sell"
SOURCE_POPULAR = "popular"  # bestsellers of a category
SOURCE_TRENDING = "trending"
SOURCE_NEW_ARRIVALS = "new_arrivals"
SOURCES = (SOURCE_MODEL, SOURCE_CROSS_SELL, SOURCE_POPULAR, SOURCE_TRENDING, SOURCE_NEW_ARRIVALS)

# a new product with fewer recent interactions than this is announced as a "New arrival"
NEW_ARRIVAL_MAX_INTERACTIONS = 20


class ReasonError(ValueError):
    """An unknown source of recommendations."""


@dataclass(frozen=True)
class ReasonContext:
    """What one user did, as far as reasons are concerned.

    ``purchased``: category of a product the user bought -> that product's name
    (the latest one per category). ``complements``: category -> categories that
    go with it (the same map as ``RerankConfig.complements``). ``personal``: the
    texts may name those products (off: the generic texts).
    """

    viewed_categories: frozenset[str] = frozenset()
    just_viewed: str | None = None  # a real-time model's list: the product (name or id) it follows
    purchased: Mapping[str, str] = field(default_factory=dict)
    complements: Mapping[str, Sequence[str]] = field(default_factory=dict)
    new_max_interactions: int = NEW_ARRIVAL_MAX_INTERACTIONS
    personal: bool = True
    goes_with: Mapping[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # category of a recommendable item -> the purchased product it goes with
        goes_with: dict[str, str] = {}
        for bought_category, product_name in self.purchased.items():
            for comp in self.complements.get(bought_category, ()):
                goes_with.setdefault(comp, product_name)
        object.__setattr__(self, "goes_with", goes_with)
        object.__setattr__(self, "viewed_categories", frozenset(self.viewed_categories))


EMPTY_CONTEXT = ReasonContext()


# the templates that name one of the user's products -> the text without it
_NAMING = ((REASON_GOES_WITH, REASON_GOES_WITH_GENERIC), (REASON_JUST_VIEWED, REASON_JUST_VIEWED_GENERIC))


def impersonal(text: str) -> str:
    """A reason text without the user's product: a text of a naming template becomes its generic text."""
    for template, generic in _NAMING:
        prefix = template.split("{", 1)[0]
        if text.startswith(prefix):
            return generic
    return text


def _personal_reason(item: Candidate, ctx: ReasonContext) -> str:
    if item.category in ctx.goes_with:
        if not ctx.personal:
            return REASON_GOES_WITH_GENERIC
        return REASON_GOES_WITH.format(product=ctx.goes_with[item.category])
    if item.category and item.category in ctx.viewed_categories:
        return REASON_VIEWED_CATEGORY.format(category=item.category)
    if item.is_new and item.popularity < ctx.new_max_interactions:
        return REASON_NEW_ARRIVAL
    return REASON_LIKE_YOU


def reason_for(item: Candidate, source: str = SOURCE_MODEL, ctx: ReasonContext = EMPTY_CONTEXT) -> str:
    """The reason text of one item that came from ``source``."""
    if source == SOURCE_MODEL and ctx.just_viewed:
        return REASON_JUST_VIEWED.format(product=ctx.just_viewed) if ctx.personal else REASON_JUST_VIEWED_GENERIC
    if source in (SOURCE_MODEL, SOURCE_CROSS_SELL):
        return _personal_reason(item, ctx)
    if source == SOURCE_POPULAR:
        return REASON_POPULAR_IN.format(category=item.category) if item.category else REASON_TRENDING
    if source == SOURCE_TRENDING:
        return REASON_TRENDING
    if source == SOURCE_NEW_ARRIVALS:
        return REASON_NEW_ARRIVAL
    raise ReasonError(f"unknown recommendation source {source!r}; expected one of {SOURCES}")


def attach_reasons(
    items: Iterable[Candidate], source: str = SOURCE_MODEL, ctx: ReasonContext = EMPTY_CONTEXT
) -> list[Candidate]:
    """A copy of ``items`` with each ``reason`` set."""
    return [c.with_reason(reason_for(c, source, ctx)) for c in items]

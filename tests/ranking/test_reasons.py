"""Each reason, and which one wins when several are true."""

from __future__ import annotations

import pytest

from recsys.constants import (
    REASON_GOES_WITH,
    REASON_LIKE_YOU,
    REASON_NEW_ARRIVAL,
    REASON_POPULAR_IN,
    REASON_TRENDING,
    REASON_VIEWED_CATEGORY,
)
from recsys.ranking.reasons import (
    SOURCE_CROSS_SELL,
    SOURCE_MODEL,
    SOURCE_NEW_ARRIVALS,
    SOURCE_POPULAR,
    SOURCE_TRENDING,
    ReasonContext,
    ReasonError,
    attach_reasons,
    impersonal,
    reason_for,
)
from recsys.ranking.rerank import Candidate

CTX = ReasonContext(
    viewed_categories=frozenset({"shoes", "lenses"}),
    purchased={"cameras": "Nikon Z5"},
    complements={"cameras": ["lenses", "tripods"]},
)


def test_model_item_defaults_to_customers_like_you():
    assert reason_for(Candidate(1, 1.0, "books"), SOURCE_MODEL, CTX) == REASON_LIKE_YOU
    assert reason_for(Candidate(1, 1.0, "books")) == REASON_LIKE_YOU


def test_viewed_category():
    assert reason_for(Candidate(1, 1.0, "shoes"), SOURCE_MODEL, CTX) == REASON_VIEWED_CATEGORY.format(category="shoes")
    assert reason_for(Candidate(1, 1.0, "shoes"), SOURCE_MODEL, CTX) == "Because you viewed shoes"


def test_new_arrival_needs_few_interactions():
    assert reason_for(Candidate(1, 1.0, "books", is_new=True, popularity=3), SOURCE_MODEL, CTX) == REASON_NEW_ARRIVAL
    busy = Candidate(1, 1.0, "books", is_new=True, popularity=500)
    assert reason_for(busy, SOURCE_MODEL, CTX) == REASON_LIKE_YOU
    strict = ReasonContext(new_max_interactions=1)
    assert reason_for(Candidate(1, 1.0, "books", is_new=True, popularity=3), SOURCE_MODEL, strict) == REASON_LIKE_YOU


def test_goes_with_wins_over_viewed_category():
    # "lenses" is both a viewed category and a complement of the purchased camera
    assert reason_for(Candidate(1, 1.0, "lenses"), SOURCE_MODEL, CTX) == "Goes with your Nikon Z5"
    assert reason_for(Candidate(1, 1.0, "tripods"), SOURCE_CROSS_SELL, CTX) == REASON_GOES_WITH.format(
        product="Nikon Z5"
    )


def test_generic_reasons_follow_the_same_rules_without_naming_the_users_products():
    import dataclasses

    generic = dataclasses.replace(CTX, personal=False)
    assert reason_for(Candidate(1, 1.0, "lenses"), SOURCE_MODEL, generic) == "Goes with your recent purchase"
    assert reason_for(Candidate(1, 1.0, "tripods"), SOURCE_CROSS_SELL, generic) == "Goes with your recent purchase"
    viewed = dataclasses.replace(generic, just_viewed="Red Shoe")
    assert reason_for(Candidate(1, 1.0, "books"), SOURCE_MODEL, viewed) == "Because of what you just viewed"
    for item in (Candidate(1, 1.0, "shoes"), Candidate(1, 1.0, "books", is_new=True, popularity=3),
                 Candidate(1, 1.0, "books")):  # the rules that name no product of the user's give the same text
        assert reason_for(item, SOURCE_MODEL, generic) == reason_for(item, SOURCE_MODEL, CTX)


@pytest.mark.parametrize("stored, shown", [
    ("Because you just viewed Red Shoe", "Because of what you just viewed"),
    ("Goes with your Nikon Z5", "Goes with your recent purchase"),
    ("Goes with your recent purchase", "Goes with your recent purchase"),
    ("Because you viewed shoes", "Because you viewed shoes"),
    (REASON_LIKE_YOU, REASON_LIKE_YOU), (REASON_NEW_ARRIVAL, REASON_NEW_ARRIVAL),
])
def test_impersonal_turns_a_stored_text_into_its_generic_one(stored, shown):
    assert impersonal(stored) == shown


def test_list_sources():
    item = Candidate(1, 1.0, "shoes")
    assert reason_for(item, SOURCE_POPULAR, CTX) == REASON_POPULAR_IN.format(category="shoes")
    assert reason_for(item, SOURCE_TRENDING, CTX) == REASON_TRENDING
    assert reason_for(item, SOURCE_NEW_ARRIVALS, CTX) == REASON_NEW_ARRIVAL


def test_unknown_source_is_refused():
    with pytest.raises(ReasonError, match="source"):
        reason_for(Candidate(1, 1.0), "magic", CTX)


def test_attach_reasons_copies():
    items = [Candidate(1, 1.0, "shoes"), Candidate(2, 0.5, "books")]
    out = attach_reasons(items, SOURCE_MODEL, CTX)
    assert [c.reason for c in out] == ["Because you viewed shoes", REASON_LIKE_YOU]
    assert items[0].reason == ""

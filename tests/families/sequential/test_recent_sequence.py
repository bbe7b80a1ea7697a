"""The recent sequence the API keeps for the sequential model, its key, its seeding and its reason (pure)."""

from __future__ import annotations

import numpy as np

from recsys.constants import CLICK, IMPRESSION, PURCHASE, RETURN, VIEW
from recsys.data.sequences import MAX_SEQUENCE, newest_first, push, sequence_key
from recsys.ranking.reasons import SOURCE_CROSS_SELL, SOURCE_MODEL, ReasonContext, reason_for
from recsys.ranking.rerank import Candidate
from recsys.serving.session_state import parse_session, seed_fields


def test_pushing_events_one_by_one_is_the_newest_first_list_of_the_log():
    rng = np.random.default_rng(0)
    for _ in range(200):
        log = rng.integers(1, 30, size=int(rng.integers(0, 80))).tolist()
        state: list[int] = []
        for p in log:
            state = push(state, p)
        assert state == newest_first(log)
        assert len(state) <= MAX_SEQUENCE and len(set(state)) == len(state)


def test_the_key_changes_exactly_when_the_sequence_does():
    rng = np.random.default_rng(1)
    state: list[int] = []
    for p in rng.integers(1, 12, size=2000).tolist():
        after = push(state, p)
        assert (sequence_key(after) != sequence_key(state)) == (after != state)
        state = after
    assert sequence_key([]) == "" and sequence_key(list(range(30))).count(",") == 9


def test_seeding_fills_the_sequence_from_signal_events_newest_first():
    recent = [(5, VIEW), (7, IMPRESSION), (3, PURCHASE), (5, CLICK), (9, RETURN), (2, VIEW)]  # newest first
    fields = seed_fields(recent, lambda p: "c")
    assert parse_session(fields).sequence == (5, 3, 2)


def test_just_viewed_names_model_items_only():
    item = Candidate(product_id=1, score=1.0, category="Shoes")
    ctx = ReasonContext(viewed_categories=frozenset({"Shoes"}), just_viewed="Red Shoe")
    assert reason_for(item, SOURCE_MODEL, ctx) == "Because you just viewed Red Shoe"
    assert reason_for(item, SOURCE_CROSS_SELL, ctx) == "Because you viewed Shoes"
    assert reason_for(item, SOURCE_MODEL, ReasonContext(viewed_categories=frozenset({"Shoes"}))) == \
        "Because you viewed Shoes"

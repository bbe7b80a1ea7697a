"""Small pure pieces of the API: breaker, timestamps, error fields, URLs, lists, model status."""

from __future__ import annotations

import pytest

from api_helpers import catalog_rows, lists_json, pid
from recsys.api.errors import field_of
from recsys.api.middleware import endpoint_label, incoming_request_id
from recsys.api.ops import NO_MODEL, model_status_of, training_accuracy
from recsys.constants import CLICK, MS_PER_DAY, PURCHASE, VIEW
from recsys.serving.catalog import CatalogSnapshot
from recsys.serving.errors import InvalidInputError
from recsys.serving.events import check_timestamp
from recsys.serving.fallbacks import RankedList, lists_from_counts, lists_from_redis
from recsys.serving.item_lists import blend
from recsys.serving.stores.breaker import CircuitBreaker
from recsys.serving.stores.db_store import async_database_url

NOW = 1_800_000_000_000


def test_breaker_opens_for_the_cooldown_then_closes():
    t = [0.0]
    breaker = CircuitBreaker("redis", cooldown_seconds=2.0, clock=lambda: t[0])
    assert breaker.available()
    breaker.record_failure()
    assert not breaker.available()
    t[0] = 2.5
    assert breaker.available()
    breaker.record_success()
    assert breaker.available() and breaker.failures == 1


@pytest.mark.parametrize("ts, message", [
    (NOW + 301_000, "in the future"),
    (NOW - 31 * MS_PER_DAY, "more than 30 days old"),
    (1_700_000_000, "more than 30 days old"),  # seconds instead of milliseconds
])
def test_timestamps_outside_the_window_are_refused(ts, message):
    with pytest.raises(InvalidInputError, match=message) as err:
        check_timestamp(ts, NOW, skew_seconds=300, max_age_days=30)
    assert err.value.field == "timestamp"


def test_timestamps_inside_the_window_pass():
    check_timestamp(NOW + 299_000, NOW, skew_seconds=300, max_age_days=30)
    check_timestamp(NOW - 29 * MS_PER_DAY, NOW, skew_seconds=300, max_age_days=30)


def test_field_of_a_validation_location():
    assert field_of(("query", "num_items")) == "num_items"
    assert field_of(("body", "price")) == "price"
    assert field_of(("body",)) == "body"


def test_async_database_urls():
    assert async_database_url("postgresql+psycopg://u@h:5432/db") == "postgresql+asyncpg://u@h:5432/db"
    assert async_database_url("postgres://h/db") == "postgresql+asyncpg://h/db"
    assert async_database_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    with pytest.raises(ValueError):
        async_database_url("nonsense")


def test_request_ids_and_endpoint_labels():
    assert incoming_request_id([(b"X-Request-ID", b"abc-123")]) == "abc-123"
    assert incoming_request_id([(b"x-request-id", b"bad id with spaces")]) is None
    assert endpoint_label({}) == "unmatched"


def test_ranked_list_tolerates_missing_scores():
    lst = RankedList.from_json({"products": [3, 1, 2]})
    assert lst.entries() == [(3, 0.0, 0), (1, 0.0, 0), (2, 0.0, 0)]
    assert len(RankedList.from_json(None)) == 0


def test_lists_from_redis_know_categories_and_popularity():
    lists = lists_from_redis(lists_json())
    assert lists.origin == "redis" and "Shoes" in lists.categories
    assert lists.bestsellers["Books"].products[0] == pid("Books", 1)
    assert lists.popularity[pid("Shoes", 1)] > 0


def test_lists_from_counts_the_database_fallback():
    catalog = CatalogSnapshot.from_rows(catalog_rows())
    counts = [(pid("Shoes", 1), VIEW, 10), (pid("Shoes", 2), PURCHASE, 3), (pid("Books", 1), CLICK, 4),
              (pid("Books", 2), PURCHASE, 1), (999_999, PURCHASE, 50)]  # an unknown product is ignored
    lists = lists_from_counts(counts, catalog, now_ms=catalog.products[101].created_at_ms + 200 * MS_PER_DAY,
                              new_days=14)
    assert lists.origin == "database"
    assert lists.trending.products[:2] == (pid("Shoes", 2), pid("Shoes", 1))  # 3 purchases x 5 > 10 views
    assert lists.bestsellers["Shoes"].products == (pid("Shoes", 2),)
    assert set(lists.new_arrivals.products) == {pid(c, 10) for c in ("Shoes", "Fashion", "Electronics",
                                                                      "Books", "Home")}
    assert 999_999 not in lists.popularity


def test_blend_weighs_co_purchases_and_cosine():
    out = blend([(5, 10), (6, 5)], [(6, 0.9), (7, 0.8), (8, -0.5)], weight=0.5)
    assert [p for p, _, _ in out] == [6, 5, 7, 8]
    assert dict((p, co) for p, _, co in out) == {6: True, 5: True, 7: False, 8: False}


def test_model_status_of_a_registry_row():
    assert model_status_of(None)["status"] == NO_MODEL
    row = {"model_id": "01ABC", "version": 3, "status": "LIVE", "created_at": None,
           "metrics": {"new": {"ndcg@10": 0.2, "precision@10": 0.15}}}
    body = model_status_of(row)
    assert body["model_version"] == "01ABC" and body["training_accuracy"] == 0.15 and body["version"] == 3
    assert training_accuracy({}) is None

"""Bench 2c's arithmetic over per-shard timings: the balance and the split into fixed and per-user costs."""

from __future__ import annotations

import pytest

from bench.bench_shards import balance, fan_out_cost


def test_balance_summarises_time_and_users_of_the_shards():
    b = balance([2.0, 3.0, 5.0, 2.0], [100, 100, 200, 100])
    assert b["shards"] == 4 and b["sum_seconds"] == 12.0
    assert b["median_seconds"] == pytest.approx(2.5)
    assert b["max_over_min"] == pytest.approx(2.5)
    assert b["max_over_mean"] == pytest.approx(5.0 / 3.0)
    assert b["users_max_over_mean"] == pytest.approx(200 / 125)
    assert b["median_users_per_s"] == pytest.approx(45.0)  # of 50, 33.3, 40, 50 users/s
    assert b["seconds_per_user"] == pytest.approx(12.0 / 500)


def test_balance_of_equal_shards_is_one():
    b = balance([1.5] * 8, [10] * 8)
    assert b["max_over_min"] == b["max_over_mean"] == b["users_max_over_mean"] == 1.0


def test_balance_refuses_mismatched_or_empty_shards():
    for seconds, users in (([], []), ([1.0], [1, 2]), ([1.0], [0])):
        with pytest.raises(ValueError):
            balance(seconds, users)


def test_fan_out_cost_recovers_the_fixed_and_per_user_costs():
    fixed, per_user, users, shards = 0.4, 0.002, 10_000, 8
    whole = fixed + users * per_user
    out = fan_out_cost(shards * fixed + users * per_user, whole, shards, users)
    assert out["fixed_seconds_per_call"] == pytest.approx(fixed)
    assert out["seconds_per_user"] == pytest.approx(per_user)
    with pytest.raises(ValueError):
        fan_out_cost(1.0, 1.0, 1, users)

"""Assignment: stable across calls and processes, the configured split, a fresh shuffle per test."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import pytest

from recsys.serving.assignment import arm_model, assign_arm, assignment_payload, bucket, is_running, remaining_seconds


def test_same_user_same_arm_every_time_and_in_another_process():
    here = [assign_arm(7, u, 0.2) for u in range(1, 2001)]
    assert here == [assign_arm(7, u, 0.2) for u in range(1, 2001)]
    code = ("from recsys.serving.assignment import assign_arm;"
            "print(','.join(assign_arm(7, u, 0.2) for u in range(1, 2001)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.strip().split(",")
    assert other == here  # not Python's salted hash(): workers and restarts agree


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.05])
def test_split_proportion(fraction):
    arms = np.array([assign_arm(3, u, fraction) == "treatment" for u in range(1, 100_001)])
    assert arms.mean() == pytest.approx(fraction, abs=4 * np.sqrt(fraction * (1 - fraction) / 1e5))


def test_buckets_are_uniform_and_tests_reshuffle_users():
    b = np.array([bucket(1, u) for u in range(50_000)])
    counts, _ = np.histogram(b, bins=10, range=(0, 1))
    assert counts.min() > 4_700 and counts.max() < 5_300
    a1 = np.array([assign_arm(1, u, 0.5) for u in range(20_000)])
    a2 = np.array([assign_arm(2, u, 0.5) for u in range(20_000)])
    assert (a1 == a2).mean() == pytest.approx(0.5, abs=0.02)  # independent of the previous test


def test_new_and_anonymous_ids_are_assigned_too():
    assert {assign_arm(9, u, 0.5) for u in (1, 2**62, 987654321987)} <= {"control", "treatment"}


def test_bad_fraction_and_arm_are_refused():
    with pytest.raises(ValueError, match="treatment_fraction"):
        assign_arm(1, 1, 1.0)
    with pytest.raises(ValueError, match="arm"):
        arm_model({"control_model_id": "a", "treatment_model_id": "b"}, "other")


def test_payload_ttl_and_running():
    now = dt.datetime(2026, 11, 27, 12, tzinfo=dt.timezone.utc)
    test = {"test_id": 4, "control_model_id": "a", "treatment_model_id": "b", "status": "RUNNING",
            "end_at": now + dt.timedelta(hours=2)}
    assert assignment_payload(test, "treatment") == {"test_id": 4, "model_id": "b", "arm": "treatment"}
    assert remaining_seconds(test["end_at"], now) == 7200
    assert remaining_seconds(now - dt.timedelta(hours=1), now) == 1
    assert is_running(test, now) and not is_running(test, now + dt.timedelta(hours=3))
    assert not is_running({**test, "status": "STOPPED"}, now) and not is_running(None, now)

"""Deterministic ids and timestamp parsing for real logs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from recsys.data.ids import HASH_ID_MIN, derive_event_ids, stable_id, stable_ids, to_epoch_ms


def test_integer_ids_are_kept_and_others_hashed_into_a_high_range():
    assert stable_id(42) == 42 and stable_id("00042") == 42 and stable_id(17850.0) == 17850
    assert stable_id(" 7 ") == 7
    for raw in ("85123A", "alice", "0", "-5", "72d76fde-8bb3-4e00-8c23-a032dfed738c", 2**41):
        assert HASH_ID_MIN <= stable_id(raw) < 2**62
    assert stable_id("alice") != stable_id("bob")


def test_hashed_ids_are_the_same_in_another_process():
    """No salted hash(): a new interpreter maps the same strings to the same ids."""
    code = "from recsys.data.ids import stable_id; print(stable_id('85123A'), stable_id('alice'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x) for x in out] == [stable_id("85123A"), stable_id("alice")]


def test_stable_ids_vectorised_and_missing_ids_rejected():
    values = pd.Series(["b", "a", "b", "12"], name="uid")
    ids = stable_ids(values)
    assert ids.dtype == np.int64 and ids[0] == ids[2] and ids[3] == 12
    assert ids.tolist() == [stable_id(v) for v in values]
    with pytest.raises(ValueError, match="'uid' has 1 missing"):
        stable_ids(pd.Series(["a", None], name="uid"))


@pytest.mark.parametrize(
    "values",
    [
        ["2024-05-01T10:00:00Z", "2024-05-01T10:00:01.500Z"],
        ["2024-05-01 10:00:00", "2024-05-01 10:00:01.5"],  # naive: UTC
        ["2024-05-01 12:00:00+02:00", "2024-05-01 12:00:01.5+02:00"],
        ["2024-05-01 10:00:00 UTC", "2024-05-01 10:00:01.500 UTC"],  # REES46 style
        [1714557600, 1714557601.5],  # epoch seconds
        [1714557600000, 1714557601500],  # epoch ms
        ["1714557600", "1714557601.5"],  # epoch seconds as text
    ],
)
def test_to_epoch_ms_reads_iso_and_epoch_numbers(values):
    assert to_epoch_ms(pd.Series(values, name="ts")).tolist() == [1714557600000, 1714557601500]


def test_to_epoch_ms_datetimes_and_errors():
    naive = pd.Series(pd.to_datetime(["2024-05-01 10:00:00"]), name="ts")
    assert to_epoch_ms(naive).tolist() == [1714557600000]
    with pytest.raises(ValueError, match="'ts'.*cannot parse"):
        to_epoch_ms(pd.Series(["yesterday"], name="ts"))
    with pytest.raises(ValueError, match="'ts' has 1 missing"):
        to_epoch_ms(pd.Series(["2024-05-01", None], name="ts"))


def test_derived_event_ids_are_deterministic_and_keep_duplicates_apart():
    events = pd.DataFrame({
        "user_id": [1, 1, 1, 2], "product_id": [5, 5, 5, 5], "event_type": ["VIEW", "VIEW", "CLICK", "VIEW"],
        "session_id": ["s", "s", "s", None], "timestamp": [10, 10, 10, 10], "price": [np.nan] * 4,
    })
    ids = derive_event_ids(events, "src")
    assert ids.tolist() == derive_event_ids(events.copy(), "src").tolist()
    assert ids.is_unique and ids.str.len().max() <= 64 and ids.str.startswith("src-").all()
    assert ids[0].rsplit("-", 1)[0] == ids[1].rsplit("-", 1)[0]  # identical rows: same hash, new occurrence
    assert derive_event_ids(events.iloc[[2]], "src").iloc[0] == ids[2]  # content, not position

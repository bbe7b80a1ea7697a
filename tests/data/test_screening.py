"""The loader's row screening and timestamp-unit rule (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.screening import EventLogError, LoadReport, epoch_to_ms, epoch_unit, screen_events

MS = 1_764_000_000_000  # 2025-11-24 in epoch ms


@pytest.mark.parametrize("unit, factor", [("s", 1e-3), ("ms", 1.0), ("us", 1e3), ("ns", 1e6)])
def test_each_unit_is_told_apart_from_today_back_to_1973(unit, factor):
    for ms in (MS, 100_000_000_000, 9 * 10**13):  # today, 1973-03-03, 4821
        numbers = np.array([ms * factor] * 3)
        assert epoch_unit(numbers) == unit
        assert epoch_to_ms(numbers, unit).tolist() == [ms] * 3


def test_the_median_decides_so_outliers_cannot_flip_a_file():
    seconds = np.array([MS / 1000] * 9 + [2e14])
    assert epoch_unit(seconds) == "s"
    with pytest.raises(ValueError, match="timestamp unit"):
        epoch_to_ms(seconds, "minutes")


def test_rows_are_rejected_per_reason_and_counted_once():
    log = pd.DataFrame({"event_type": ["VIEW", None, "PURCHASE", "VIEW"], "price": [1.0, 2.0, -5.0, -1.0],
                        "timestamp": [MS, MS, MS, MS + 10 * 60_000]})
    raw = pd.Series(["view", "teleport", "buy", "view"])
    report = LoadReport("log.csv")
    kept = screen_events(log, report, now_ms=MS, skew_ms=300_000, raw_types=raw)
    assert kept["price"].tolist() == [1.0]
    assert report.rows == 4 and report.rows_rejected == 3
    assert report.rejected == {"unknown_event_type": 1, "negative_price": 2, "future_timestamp": 1}
    assert report.examples["unknown_event_type"] == ["teleport"]
    assert report.examples["future_timestamp"] == ["2025-11-24T16:10:00+00:00"]
    assert "3 of 4 row(s) rejected" in report.summary()


def test_a_file_with_nothing_acceptable_is_an_error_naming_it():
    log = pd.DataFrame({"event_type": ["VIEW"], "price": [-1.0], "timestamp": [MS]})
    with pytest.raises(EventLogError, match=r"^log.csv: every row was rejected"):
        screen_events(log, LoadReport("log.csv"), now_ms=MS, skew_ms=0)

"""Read the event log to evaluate on, and an optional fixed test log in the same format.

Both go through ``recsys.data.loaders.read_event_log`` (the loader behind
``python -m recsys load``), so ids, event types and attributes are the same as in
production. With a test log, users and products are the union of both files
(the training file's attributes win for ids in both).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys.constants import COL_ITEM, COL_USER
from recsys.data.loaders import read_event_log


@dataclass
class EventLogs:
    """The events to split (or to train on, with a test log), the fixed test events, users and products."""

    events: pd.DataFrame
    test_events: pd.DataFrame | None
    users: pd.DataFrame
    products: pd.DataFrame
    source: dict


def _union(first: pd.DataFrame, second: pd.DataFrame, key: str) -> pd.DataFrame:
    both = pd.concat([first, second[~second[key].isin(first[key])]], ignore_index=True)
    return both.sort_values(key, kind="stable").reset_index(drop=True)


def read_logs(dataset: str | Path, fmt: str, columns: str | None = None,
              test_file: str | Path | None = None) -> EventLogs:
    """Read ``dataset`` (and ``test_file``) with the generic loader; loader errors propagate unchanged."""
    shop = read_event_log(dataset, fmt, columns)
    source = {"dataset": str(dataset), "format": fmt, "columns": columns}
    if test_file is None:
        return EventLogs(shop.events, None, shop.users, shop.products, source)
    test = read_event_log(test_file, fmt, columns)
    source["test_file"] = str(test_file)
    return EventLogs(shop.events, test.events, _union(shop.users, test.users, COL_USER),
                     _union(shop.products, test.products, COL_ITEM), source)

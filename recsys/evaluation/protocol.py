"""The evaluation protocol: a temporal split, the positives, what is excluded, who and what is counted.

- Split: training events strictly before the cut-off, test events at or after it
  (or a fixed test log). The cut-off is a given date/time, the start of the last N
  UTC days, or (default) the time that leaves the last 20% of events for the test.
  Per customer (``per_customer_logs``): each customer's newest ``fraction`` of positive events
  (whole timestamps: a basket stays together) and what follows them are the test; the rest of the
  log, every other customer's later events included, is training.
- Validation (``recsys.evaluation.validation``): the training side carved again, shaped like the
  test, so model selection and tuning never read the test: its newest days (time split, widened or
  switched to a per-user split when they hold too few users) or each customer's newest events.
- Training signal: per (user, product) the summed ``EVENT_WEIGHTS`` of events with a
  positive weight (RETURN and IMPRESSION are not training signal), as in production.
- Truth: the products a user had a positive event on (``positive_events``) in the test.
- Excluded: products the user had a "seen" event on before the cut-off (``exclude_seen``, as
  ``RECSYS_EXCLUDE_SEEN``: by default PURCHASE, "new products for known customers") are neither
  candidates nor truth; users left without truth are dropped.
- Counted: users and products with training interactions (the main table). Products
  first seen in the test form a separate "new items" slice ranked among themselves.
- Groups: cold users have at most ``cold_max_items`` distinct training products, warm users more.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_PRICE, COL_TIMESTAMP, COL_USER, DEFAULT_K, EVENT_TYPES, \
    EVENT_WEIGHTS, EXCLUDE_PURCHASED, MS_PER_DAY, POSITIVE_EVENTS, PURCHASE
from recsys.evaluation.errors import EmptyTestSetError, EmptyTrainingSetError, EvaluationError
from recsys.evaluation.logs import EventLogs
from recsys.evaluation.split import Split, build_split
from recsys.families.base import FrameHistory
from recsys.ranking.seen import seen_event_types
from recsys.timeutil import day_start_ms, ms_to_datetime

DEFAULT_TEST_FRACTION = 0.2
PER_CUSTOMER = "per-customer"
COLD, WARM = "cold", "warm"


@dataclass(frozen=True)
class Protocol:
    k: int = DEFAULT_K
    positive_events: tuple[str, ...] = POSITIVE_EVENTS
    cold_max_items: int = 10
    train_days: int | None = None  # training window before the cut-off; None = all history
    seed: int = 42
    exclude_seen: str = EXCLUDE_PURCHASED  # what counts as already seen (RECSYS_EXCLUDE_SEEN)

    def __post_init__(self):
        try:
            seen_event_types(self.exclude_seen)
        except ValueError as exc:
            raise EvaluationError(str(exc)) from exc
        unknown = [t for t in self.positive_events if t not in EVENT_TYPES]
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise EvaluationError(f"k must be a positive integer, got {self.k!r}")
        if not self.positive_events or unknown:
            raise EvaluationError(f"positive events must be a non-empty subset of {list(EVENT_TYPES)}, "
                                  f"got {list(self.positive_events)}")
        if self.cold_max_items < 0 or (self.train_days is not None and self.train_days < 1):
            raise EvaluationError("cold_max_items must be >= 0 and train_days >= 1")

    @property
    def seen_types(self) -> tuple[str, ...]:
        return seen_event_types(self.exclude_seen)


@dataclass(frozen=True)
class Cutoff:
    """How the log is split: ``how`` in split-date | test-days | test-fraction | test-file."""

    how: str
    value: str
    ms: int | None  # None for a fixed test log


def choose_cutoff(events: pd.DataFrame, *, split_at: dt.datetime | None = None, test_days: int | None = None,
                  test_fraction: float | None = None) -> Cutoff:
    """The cut-off from at most one rule; without any, the last ``DEFAULT_TEST_FRACTION`` of events is the test."""
    if sum(x is not None for x in (split_at, test_days, test_fraction)) > 1:
        raise EvaluationError("give at most one of a split date, a number of test days and a test fraction")
    if events.empty:
        raise EmptyTrainingSetError("the event log has no events")
    if split_at is not None:
        stamp = split_at if split_at.tzinfo else split_at.replace(tzinfo=dt.timezone.utc)
        return Cutoff("split-date", stamp.isoformat(), int(stamp.timestamp() * 1000))
    if test_days is not None:
        if test_days < 1:
            raise EvaluationError(f"test days must be >= 1, got {test_days}")
        last_day = ms_to_datetime(int(events[COL_TIMESTAMP].max())).date()
        start = day_start_ms(last_day) - (test_days - 1) * MS_PER_DAY
        return Cutoff("test-days", str(test_days), start)
    fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
    if not 0.0 < fraction < 1.0:
        raise EvaluationError(f"test fraction must be in (0, 1), got {fraction}")
    stamps = np.sort(events[COL_TIMESTAMP].to_numpy())
    return Cutoff("test-fraction", str(fraction), int(stamps[int(len(stamps) * (1.0 - fraction))]))


def interaction_frame(events: pd.DataFrame) -> pd.DataFrame:
    """Per (user, product) with a positive summed weight: ``weight``, ``purchases`` and ``spend``."""
    weight = events[COL_EVENT_TYPE].map(EVENT_WEIGHTS).fillna(0.0).astype(float)
    rows = events[weight > 0]
    bought = (rows[COL_EVENT_TYPE] == PURCHASE).to_numpy()
    frame = pd.DataFrame({
        COL_USER: rows[COL_USER].to_numpy(), COL_ITEM: rows[COL_ITEM].to_numpy(),
        "weight": weight[weight > 0].to_numpy(), "purchases": bought.astype(np.int64),
        "spend": np.where(bought, rows[COL_PRICE].fillna(0.0).to_numpy(dtype=float), 0.0),
    })
    return frame.groupby([COL_USER, COL_ITEM], as_index=False, sort=True)[["weight", "purchases", "spend"]].sum()


@dataclass
class EvalSplit:
    protocol: Protocol
    train_events: pd.DataFrame
    frame: pd.DataFrame  # training interactions (see ``interaction_frame``)
    users: pd.DataFrame  # every user with its attributes (for fitting)
    products: pd.DataFrame  # every product with its attributes
    main: Split  # evaluated users x the training catalogue
    groups: dict[str, np.ndarray]  # boolean masks over ``main.users``
    new_items: Split | None  # evaluated users x products first seen in the test
    info: dict  # the protocol as stated in the output
    cutoff_ms: int | None = None  # None with a fixed test log


def _pairs(events: pd.DataFrame, types: tuple[str, ...]) -> pd.DataFrame:
    return events.loc[events[COL_EVENT_TYPE].isin(types), [COL_USER, COL_ITEM]].drop_duplicates()


def _period(events: pd.DataFrame) -> list[str]:
    return [ms_to_datetime(int(events[COL_TIMESTAMP].min())).isoformat(),
            ms_to_datetime(int(events[COL_TIMESTAMP].max())).isoformat()]


def _days(test: pd.DataFrame, cutoff_ms: int | None) -> float:
    start = int(test[COL_TIMESTAMP].min()) if cutoff_ms is None else cutoff_ms
    return (int(test[COL_TIMESTAMP].max()) + 1 - start) / MS_PER_DAY


def _sides(logs: EventLogs, cutoff: Cutoff, protocol: Protocol) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Training events (in the window), test events, and every event before the cut-off (for exclusions)."""
    events = logs.events
    if cutoff.ms is None:
        if logs.test_events is None:
            raise EvaluationError("a test-file cut-off needs a test log")
        train, test = events, logs.test_events
    else:
        before = events[COL_TIMESTAMP] < cutoff.ms
        train, test = events[before], events[~before]
    history = train
    if protocol.train_days is not None and len(train):
        end = cutoff.ms if cutoff.ms is not None else int(train[COL_TIMESTAMP].max()) + 1
        train = train[train[COL_TIMESTAMP] >= end - protocol.train_days * MS_PER_DAY]
    return train, test, history


def _new_item_split(frame, test, protocol, users, products, history=None) -> Split | None:
    new = products[~products[COL_ITEM].isin(frame[COL_ITEM])]
    pairs = _pairs(test, protocol.positive_events)
    new = new[new[COL_ITEM].isin(pairs[COL_ITEM])]
    if len(new) <= protocol.k:
        return None
    split = build_split(frame, pairs, pairs.iloc[:0], users, new)
    split.history = history
    return split if len(split.users) else None


def build_eval_split(logs: EventLogs, cutoff: Cutoff, protocol: Protocol = Protocol()) -> EvalSplit:
    """Split ``logs`` at ``cutoff`` and build the evaluated users, truth and exclusions (see the module doc)."""
    train, test, history = _sides(logs, cutoff, protocol)
    frame = interaction_frame(train)
    if frame.empty:
        raise EmptyTrainingSetError(f"no training interactions before the cut-off ({cutoff.how} {cutoff.value})")
    if test.empty:
        raise EmptyTestSetError(f"no test events at or after the cut-off ({cutoff.how} {cutoff.value})")
    catalogue = logs.products[logs.products[COL_ITEM].isin(frame[COL_ITEM])]
    main = build_split(frame, _pairs(test, protocol.positive_events), _pairs(history, protocol.seen_types),
                       logs.users, catalogue)
    main.excluded = [np.array(x) for x in main.excluded]  # own copies: the slices are views of large arrays
    main.history = FrameHistory(train)  # users' events before the cut-off, for families that read sequences
    if len(main.users) == 0:
        raise EmptyTestSetError(
            f"empty test set: no user of the training side has a positive event {list(protocol.positive_events)} "
            f"after the cut-off ({cutoff.how} {cutoff.value}) on a product seen in training and not bought before")
    if protocol.k >= len(main.products):
        raise EvaluationError(f"k={protocol.k} must be smaller than the {len(main.products)} candidate products")
    n_items = frame.groupby(COL_USER).size().reindex(main.users[COL_USER]).to_numpy()
    groups = {COLD: n_items <= protocol.cold_max_items, WARM: n_items > protocol.cold_max_items}
    new_items = _new_item_split(frame, test, protocol, logs.users, logs.products, main.history)
    split = EvalSplit(protocol, train, frame, logs.users, logs.products, main, groups, new_items, {}, cutoff.ms)
    split.info = {**logs.source, **describe(split, cutoff, test)}
    return split


def describe(split: EvalSplit, cutoff: Cutoff, test: pd.DataFrame) -> dict:
    """The protocol as stated in the JSON and Markdown outputs."""
    p, main = split.protocol, split.main
    new = split.new_items
    return {
        "split": {"how": cutoff.how, "value": cutoff.value,
                  "cutoff": None if cutoff.ms is None else ms_to_datetime(cutoff.ms).isoformat(),
                  "train_period": _period(split.train_events), "test_period": _period(test),
                  "train_window_days": p.train_days, "test_days": round(_days(test, cutoff.ms), 2)},
        "training_signal": "summed event weights per (user, product) of events with a positive weight "
                           f"{ {t: EVENT_WEIGHTS[t] for t in POSITIVE_EVENTS} }; RETURN and IMPRESSION ignored",
        "positives": list(p.positive_events),
        "exclude_seen": p.exclude_seen,
        "excluded": f"products the user had a {'/'.join(p.seen_types)} event on before the cut-off "
                    "(neither candidates nor truth)",
        "counted": "users and products with training interactions; products first seen in the test "
                   "are in the new-items slice only",
        "k": p.k, "seed": p.seed, "cold_max_items": p.cold_max_items,
        "train_events": int(len(split.train_events)), "test_events": int(len(test)),
        "train_users": int(split.frame[COL_USER].nunique()), "train_pairs": int(len(split.frame)),
        "users": int(len(main.users)), "items": int(len(main.products)), "positive_pairs": main.n_positives,
        "excluded_pairs": int(sum(len(x) for x in main.excluded)),
        "cold_users": int(split.groups[COLD].sum()), "warm_users": int(split.groups[WARM].sum()),
        "new_items": 0 if new is None else int(len(new.products)),
        "new_item_users": 0 if new is None else int(len(new.users)),
    }


def per_customer_logs(logs: EventLogs, fraction: float = DEFAULT_TEST_FRACTION,
                      positive_events: tuple[str, ...] = POSITIVE_EVENTS, *, newest: int | None = None) -> EventLogs:
    """``logs`` split per customer (see the module doc): ``events`` the training side, ``test_events`` the test.

    A customer's cut is the time of its positive event at position ``max(1, floor(n * (1 - fraction)))``
    (n its positive events, oldest first), or ``max(1, n - newest)`` when ``newest`` (a count of each
    customer's newest positive events) is given; customers whose events all share their first time stay
    in training only."""
    if newest is not None and (isinstance(newest, bool) or not isinstance(newest, int) or newest < 1):
        raise EvaluationError(f"the newest events per customer must be a positive integer, got {newest!r}")
    if newest is None and not 0.0 < fraction < 1.0:
        raise EvaluationError(f"test fraction must be in (0, 1), got {fraction}")
    events = logs.events
    positive = events.loc[events[COL_EVENT_TYPE].isin(positive_events), [COL_USER, COL_TIMESTAMP]]
    positive = positive.sort_values([COL_USER, COL_TIMESTAMP], kind="stable").reset_index(drop=True)
    stamps = positive.groupby(COL_USER)[COL_TIMESTAMP]
    first, n, position = stamps.transform("first"), stamps.transform("size"), stamps.cumcount()
    keep = n - newest if newest is not None else np.floor(n * (1.0 - fraction))
    at_cut = (position == np.maximum(1, keep).astype(np.int64)) \
        & (positive[COL_TIMESTAMP] > first)
    cut = positive[at_cut].set_index(COL_USER)[COL_TIMESTAMP]
    user_cut = events[COL_USER].map(cut).fillna(np.inf).to_numpy()
    test = events[COL_TIMESTAMP].to_numpy() >= user_cut
    return EventLogs(events[~test], events[test], logs.users, logs.products, logs.source)

"""The ``basket`` protocol of ``evaluate`` (``--protocol basket``): frequently bought together, offline.

- Split: the time cut-off of the other protocols (``--split-date``, ``--test-days``, ``--test-fraction``; a
  ``--train-days`` window). Training: the purchases before the cut-off.
- Cases: each test order (``recsys.ranking.orders``: the invoice) of at least two distinct products known in
  training (bought before the cut-off) and at most ``MAX_ORDER_PRODUCTS``, like the orders the lists are
  computed from: one of its products, drawn with the seed, is hidden; the others are the basket. Products of
  the order unknown in training are left out of it (no list knows them).
- Rows, each a ranking of the training catalogue without the basket, ``k`` long:
  ``bought-together``: the co-purchase lists of the training purchases (``co_purchase_lists``, the nightly
  step's computation) combined by ``basket_list`` (the API's), filled as the API fills a short list, with the
  bestsellers of the basket's categories then the most bought products (training purchases standing in for the
  API's bestseller and trending lists); ``item-knn``: item-kNN's similar items (the family's co-occurrence
  cosine over customers, its neighbours per product) combined and filled the same way; ``popularity``: the most
  bought products.
- Metrics: the hidden product is the one relevant item: recall@k is the hit rate, map@k the reciprocal rank;
  ``from_list`` is the share of a row's items that came from its own lists rather than the fill.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_TIMESTAMP, COL_USER, PURCHASE
from recsys.evaluation.errors import EmptyTestSetError, EmptyTrainingSetError, EvaluationError
from recsys.evaluation.logs import EventLogs
from recsys.evaluation.metrics import catalog_coverage, map_at_k, ndcg_at_k, precision_at_k, recall_at_k
from recsys.evaluation.protocol import Cutoff, interaction_frame
from recsys.ranking.bought_together import MAX_ORDER_PRODUCTS, as_lists, basket_list, co_purchase_lists
from recsys.ranking.orders import order_keys
from recsys.timeutil import ms_to_datetime

BASKET = "basket"
ROWS = ("bought-together", "item-knn", "popularity")
Lists = Mapping[int, Sequence[tuple[int, float]]]


@dataclass(frozen=True)
class BasketCase:
    basket: tuple[int, ...]
    hidden: int


def _purchases(events: pd.DataFrame) -> pd.DataFrame:
    return events[events[COL_EVENT_TYPE] == PURCHASE]


def basket_cases(test: pd.DataFrame, known: set[int], seed: int) -> list[BasketCase]:
    """One case per test order of 2..``MAX_ORDER_PRODUCTS`` distinct known products (module doc)."""
    rng = np.random.default_rng(seed)
    orders = pd.DataFrame({"order": order_keys(test), COL_ITEM: test[COL_ITEM].to_numpy(dtype=np.int64),
                           COL_TIMESTAMP: test[COL_TIMESTAMP].to_numpy()})
    orders = orders[orders[COL_ITEM].isin(known)].drop_duplicates(["order", COL_ITEM])
    cases = []
    for _, group in orders.sort_values([COL_TIMESTAMP, "order"], kind="stable").groupby("order", sort=False):
        products = group[COL_ITEM].tolist()
        if 2 <= len(products) <= MAX_ORDER_PRODUCTS:
            hidden = products[int(rng.integers(len(products)))]
            cases.append(BasketCase(tuple(p for p in products if p != hidden), hidden))
    return cases


def similar_lists(train: pd.DataFrame, family_name: str) -> Lists:
    """A family's similar items per product, as the API serves them: the family trained on the same period
    through the plug-in protocol, its served files written and opened, ``similar_items`` of each product."""
    from recsys.families import ConfigBase, TrainingData, family_of

    family = family_of(family_name)
    frame = interaction_frame(train)
    data = TrainingData(frame=frame, users=pd.DataFrame({COL_USER: np.sort(frame[COL_USER].unique())}),
                        products=pd.DataFrame({COL_ITEM: np.sort(frame[COL_ITEM].unique())}))
    model = family.fit(data, family.default_config(ConfigBase()), seed=0, threads=1)
    with tempfile.TemporaryDirectory(prefix="basket-similar-") as tmp:
        folder = Path(tmp)
        model.write_served(data.users, data.products, folder)
        served = family.open_served("basket-protocol", folder, data.products)
        items = data.products[COL_ITEM].tolist()
        return {int(p): sorted(served.similar_items(int(p), len(items)), key=lambda x: (-x[1], x[0]))
                for p in items}  # ties by product id


def _rank(cases: Sequence[BasketCase], k: int, lists: Lists, fallbacks: Callable[[BasketCase], list]
          ) -> tuple[list[list[int]], float]:
    ranked, own = [], 0
    for case in cases:
        found = basket_list(lists, case.basket, k, fallbacks(case))
        ranked.append([pid for pid, _, _ in found])
        own += sum(1 for *_, tier in found if tier == 0)
    return ranked, own / max(len(cases) * k, 1)


def evaluate_baskets(logs: EventLogs, cutoff: Cutoff, *, k: int = 10, seed: int = 42,
                     train_days: int | None = None, rows: Sequence[str] = ROWS) -> dict:
    """The protocol's result ``{"protocol", "models"}`` (module doc)."""
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        raise EvaluationError(f"basket protocol rows are {list(ROWS)}, not {unknown or 'none'}")
    if cutoff.ms is None:
        train, test = _purchases(logs.events), _purchases(logs.test_events)
    else:
        train = _purchases(logs.events[logs.events[COL_TIMESTAMP] < cutoff.ms])
        test = _purchases(logs.events[logs.events[COL_TIMESTAMP] >= cutoff.ms])
    if train_days is not None and len(train):
        end = cutoff.ms if cutoff.ms is not None else int(train[COL_TIMESTAMP].max()) + 1
        train = train[train[COL_TIMESTAMP] >= end - train_days * 86_400_000]
    if train.empty:
        raise EmptyTrainingSetError(f"no purchases before the cut-off ({cutoff.how} {cutoff.value})")
    bought = train.groupby(COL_ITEM).size().sort_values(ascending=False, kind="stable")
    catalogue = np.sort(bought.index.to_numpy(dtype=np.int64))
    cases = basket_cases(test, set(catalogue.tolist()), seed)
    if not cases:
        raise EmptyTestSetError("no test order of at least two products bought before the cut-off")
    largest = max(len(c.basket) for c in cases)
    if k > len(catalogue) - largest:
        raise EvaluationError(f"k={k} leaves too few candidates: {len(catalogue)} products bought in training, "
                              f"baskets of up to {largest}")
    category = logs.products.set_index(COL_ITEM)["category"].astype(str).to_dict()
    popular = [(int(p), float(n)) for p, n in bought.items()]
    best: dict[str, list[tuple[int, float]]] = {}
    for pid, n in popular:
        best.setdefault(category.get(pid, ""), []).append((pid, n))

    def fallbacks(case: BasketCase) -> list:
        cats = dict.fromkeys(category.get(p, "") for p in case.basket)
        return [*(best[c] for c in cats if c in best), popular]

    models = {}
    for row in rows:
        started = time.perf_counter()
        if row == "bought-together":
            lists = as_lists(co_purchase_lists(train))
        elif row == "item-knn":
            lists = similar_lists(train, row)  # the row is the family's name
        else:
            lists = {}
        fitted = time.perf_counter() - started
        ranked, own = _rank(cases, k, lists, fallbacks if row != "popularity" else lambda case: [popular])
        models[row] = {**_metrics(ranked, [c.hidden for c in cases], catalogue, k), "from_list": round(own, 4),
                       "products_with_list": len(lists), "fit_seconds": round(fitted, 2),
                       "seconds": round(time.perf_counter() - started, 2)}
    return {"protocol": _describe(logs, cutoff, train, test, cases, catalogue, k, seed, train_days),
            "models": models}


def _metrics(ranked: list[list[int]], hidden: list[int], catalogue: np.ndarray, k: int) -> dict:
    predictions = np.searchsorted(catalogue, np.asarray(ranked, dtype=np.int64))
    truth = [[int(i)] for i in np.searchsorted(catalogue, np.asarray(hidden, dtype=np.int64))]
    return {f"precision@{k}": precision_at_k(truth, predictions, k), f"recall@{k}": recall_at_k(truth, predictions, k),
            f"ndcg@{k}": ndcg_at_k(truth, predictions, k), f"map@{k}": map_at_k(truth, predictions, k),
            "coverage": catalog_coverage(predictions, len(catalogue), k)}


def _describe(logs, cutoff, train, test, cases, catalogue, k, seed, train_days) -> dict:
    period = lambda f: [ms_to_datetime(int(f[COL_TIMESTAMP].min())).isoformat(),  # noqa: E731
                        ms_to_datetime(int(f[COL_TIMESTAMP].max())).isoformat()] if len(f) else None
    sizes = [len(c.basket) + 1 for c in cases]
    return {**logs.source, "protocol": BASKET, "k": k, "seed": seed,
            "split": {"how": cutoff.how, "value": cutoff.value, "train_period": period(train),
                      "test_period": period(test), "train_window_days": train_days},
            "train_purchases": int(len(train)), "test_purchases": int(len(test)), "items": int(len(catalogue)),
            "cases": len(cases), "median_order_products": float(np.median(sizes)),
            "max_order_products": MAX_ORDER_PRODUCTS,
            "hidden": "one product per test order of 2..max_order_products distinct products bought in training, "
                      "drawn with the seed; the order's other such products are the basket"}


# --- outputs ------------------------------------------------------------------------
COLUMNS = ("precision@{k}", "recall@{k}", "ndcg@{k}", "map@{k}", "coverage", "from_list")


def basket_table(result: dict) -> list[str]:
    k, models = result["protocol"]["k"], result["models"]
    cols = [c.format(k=k) for c in COLUMNS]
    lines = ["| row | " + " | ".join(cols) + " | fit s |", "|---" * (len(cols) + 2) + "|"]
    for name, m in models.items():
        lines.append(f"| {name} | " + " | ".join(f"{m[c]:.4f}" for c in cols) + f" | {m['fit_seconds']:.1f} |")
    return lines


def write_basket_outputs(result: dict, json_path: Path) -> dict[str, str]:
    """``json_path`` and the Markdown next to it."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    p = result["protocol"]
    md = ["# Offline evaluation: the basket protocol (frequently bought together)", "",
          f"- data: `{p.get('dataset')}` ({p.get('format')}); split: {p['split']['how']} {p['split']['value']}; "
          f"train {' .. '.join(p['split']['train_period'])}, test {' .. '.join(p['split']['test_period'])}",
          f"- cases: {p['cases']} test orders ({p['hidden']}); median order {p['median_order_products']:g} products; "
          f"{p['items']} products bought in training are the candidates; k = {p['k']}, seed {p['seed']}",
          "- rows: bought-together = the nightly co-purchase lists combined for the basket as the API does; "
          "item-knn = item-kNN's similar items combined the same way; both filled, when short, by the "
          "bestsellers of the basket's categories then the most bought products; popularity = the most bought "
          "products. recall@k is the hit rate, map@k the reciprocal rank; from_list = share of items from the "
          "row's own lists", "", *basket_table(result)]
    out = json_path.with_suffix(".md")
    out.write_text("\n".join(md) + "\n")
    return {"json": str(json_path), "markdown": str(out)}

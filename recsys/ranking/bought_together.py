"""Frequently bought together: co-purchases within one order, per product, and their combination for a basket.

One computation for every caller: the nightly ``lists`` step writes ``co_purchase_lists`` of the window's
purchases to Redis (``recsys.pipeline.basket_lists``, keys ``bought_together:{product_id}``), the offline
``basket`` protocol computes them from its training period (``recsys.evaluation.basket``), and both the API
(``recsys.serving.basket``) and that protocol rank a basket with ``basket_list``.

- Orders: ``recsys.ranking.orders`` (a purchase's session id, the invoice; else its user's UTC day). Orders of
  more than ``MAX_ORDER_PRODUCTS`` distinct products are left out (1% of Online Retail's invoices: wholesale
  orders that pair everything with everything, at a cost growing with the square of their size).
- For products a and b: ``together(a, b)`` = orders holding both; ``score(a -> b) = together(a, b) /
  sqrt(orders(a) * orders(b))``, the cosine of their order vectors (a product bought in every order does not
  go with everything); pairs seen in fewer than ``MIN_TOGETHER`` orders are noise and left out. Each product
  keeps its ``PER_PRODUCT`` best (score, then together, then the smaller id). The cosine was chosen over the
  share of a's orders holding b (``together / orders(a)``) on Online Retail's orders of 2011-08 and -09 ranked
  from the months before (NDCG@10 0.189 vs 0.131; item-kNN 0.153), a validation period inside the training
  period of the README's ``basket`` row, never its test.
- A basket: per candidate the sum of ``score(a -> candidate)`` over the basket's products a, the basket's own
  products excluded; then, when that is short, each fallback ranking in turn (the caller's: the API's category
  bestsellers and trending), every item tagged with the tier it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.constants import COL_ITEM
from recsys.ranking.orders import order_keys

MAX_ORDER_PRODUCTS = 100
MIN_TOGETHER = 2
PER_PRODUCT = 50
LIST_COLUMNS = [COL_ITEM, "other", "together", "score"]

Ranked = Sequence[tuple[int, float]]  # (product_id, score), best first


def co_purchase_lists(purchases: pd.DataFrame, *, per_product: int = PER_PRODUCT, min_together: int = MIN_TOGETHER,
                      max_order_products: int = MAX_ORDER_PRODUCTS) -> pd.DataFrame:
    """``product_id, other, together, score``: each product's best co-purchased others, in rank order.

    ``purchases``: purchase events with ``user_id``, ``product_id``, ``session_id``, ``timestamp``."""
    if per_product < 1 or min_together < 1 or max_order_products < 2:
        raise ValueError("per_product and min_together must be >= 1, max_order_products >= 2")
    empty = pd.DataFrame({c: pd.Series(dtype="int64" if c != "score" else "float64") for c in LIST_COLUMNS})
    if purchases.empty:
        return empty
    pairs = pd.DataFrame({"order": order_keys(purchases), COL_ITEM: purchases[COL_ITEM].to_numpy(dtype=np.int64)})
    pairs = pairs.drop_duplicates()
    sizes = pairs.groupby("order")[COL_ITEM].transform("size").to_numpy()
    pairs = pairs[sizes <= max_order_products]
    orders, order_index = np.unique(pairs["order"].to_numpy(), return_inverse=True)
    products, product_index = np.unique(pairs[COL_ITEM].to_numpy(), return_inverse=True)
    baskets = sp.csr_matrix((np.ones(len(pairs), dtype=np.int64), (order_index, product_index)),
                            shape=(len(orders), len(products)))
    together = (baskets.T @ baskets).tocoo()
    n_orders = np.asarray(baskets.sum(axis=0)).ravel()
    keep = (together.row != together.col) & (together.data >= min_together)
    row, col, count = together.row[keep], together.col[keep], together.data[keep]
    if not len(row):
        return empty
    score = count / np.sqrt(n_orders[row] * n_orders[col])
    order = np.lexsort((products[col], -count, -score, row))
    row, col, count, score = row[order], col[order], count[order], score[order]
    starts = np.searchsorted(row, row, side="left")
    rank = np.arange(len(row)) - starts
    top = rank < per_product
    return pd.DataFrame({COL_ITEM: products[row[top]], "other": products[col[top]],
                         "together": count[top].astype(np.int64), "score": score[top]})


def as_lists(frame: pd.DataFrame) -> dict[int, list[tuple[int, float]]]:
    """``co_purchase_lists``'s frame as ``{product_id: [(other, score), ...]}`` in rank order."""
    out: dict[int, list[tuple[int, float]]] = {}
    for pid, other, score in zip(frame[COL_ITEM].tolist(), frame["other"].tolist(), frame["score"].tolist()):
        out.setdefault(int(pid), []).append((int(other), float(score)))
    return out


def combine(lists: Mapping[int, Ranked], basket: Iterable[int]) -> list[tuple[int, float]]:
    """The basket's co-purchases: per candidate the sum of its scores in the lists of the basket's products,
    best first (ties: smaller id), the basket's products excluded."""
    basket = list(dict.fromkeys(basket))
    inside = set(basket)
    total: dict[int, float] = {}
    for pid in basket:
        for other, score in lists.get(pid, ()):
            if other not in inside:
                total[other] = total.get(other, 0.0) + score
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))


def basket_list(lists: Mapping[int, Ranked], basket: Iterable[int], n: int, fallbacks: Sequence[Ranked] = (),
                accept: Callable[[int], bool] | None = None) -> list[tuple[int, float, int]]:
    """``(product_id, score, tier)``, at most ``n``: the basket's co-purchases (tier 0), then each of
    ``fallbacks`` in turn (tier i + 1) while the list is short. The basket's products and repeats are left out,
    and so is every product ``accept`` refuses (out of stock, a request's filters)."""
    basket = list(basket)
    taken = set(basket)
    out: list[tuple[int, float, int]] = []
    for tier, ranked in enumerate((combine(lists, basket), *fallbacks)):
        for pid, score in ranked:
            if len(out) >= n:
                return out
            if pid in taken or (accept is not None and not accept(pid)):
                continue
            taken.add(pid)
            out.append((pid, float(score), tier))
    return out

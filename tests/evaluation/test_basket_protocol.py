"""``evaluate --protocol basket``: hide one product of each test order, rank it from the others; the rows use the
nightly step's co-purchase computation and the API's basket combination."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.cli import main
from recsys.constants import MS_PER_DAY
from recsys.evaluation import basket as protocol
from recsys.evaluation.basket import ROWS, basket_cases

MAPPING = "user=uid,item=sku,timestamp=when,event_type=kind,category=cat,session=order"


def shop_log(seed: int = 0) -> pd.DataFrame:
    """Five kits, each two products always bought together in one order (``kit0-a`` with ``kit0-b``), and ten
    single items bought alone and more often: 30 days, the last 10 the test."""
    rng = np.random.default_rng(seed)
    rows = []
    for day in range(30):
        for user in range(30):
            when = f"2024-04-{day + 1:02d}T{10 + user % 8:02d}:00:00"
            if rng.random() < 0.3:
                kit = int(rng.integers(5))
                rows += [{"uid": f"u{user}", "sku": f"kit{kit}-{part}", "when": when, "kind": "purchase",
                          "cat": f"kits{kit % 2}", "order": f"o{day}-{user}"} for part in "ab"]
            rows.append({"uid": f"u{user}", "sku": f"single{int(rng.integers(10))}", "when": when, "kind": "purchase",
                         "cat": "singles", "order": f"s{day}-{user}"})
    return pd.DataFrame(rows)


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_product_of_each_test_order_is_hidden_with_the_seed():
    test = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 3, 3, 4], "product_id": [10, 11, 12, 10, 99, 13, 13, 10],
                         "session_id": ["a", "a", "a", "b", "b", "c", "c", None], "timestamp": [0] * 7 + [MS_PER_DAY]})
    cases = basket_cases(test, {10, 11, 12, 13}, seed=3)
    assert len(cases) == 1  # b: 99 unknown in training; c: one product twice; the lone purchase: one product
    (case,) = cases
    assert {*case.basket, case.hidden} == {10, 11, 12} and len(case.basket) == 2
    assert basket_cases(test, {10, 11, 12, 13}, seed=3) == cases
    assert {basket_cases(test, {10, 11, 12, 13}, seed=s)[0].hidden for s in range(20)} == {10, 11, 12}


def test_the_rows_are_the_nightly_steps_and_the_apis_functions():
    from recsys.pipeline import basket_lists
    from recsys.serving import basket

    assert protocol.co_purchase_lists is basket_lists.co_purchase_lists
    assert protocol.basket_list is basket.basket_list


def test_co_purchases_find_the_hidden_kit_part_where_popularity_cannot(tmp_path, capsys):
    path = tmp_path / "shop.csv"
    shop_log().to_csv(path, index=False)
    out_json = tmp_path / "basket.json"
    code, out, err = run(capsys, "--dataset", path, "--format", "csv", "--columns", MAPPING, "--protocol", "basket",
                         "--split-date", "2024-04-21", "--k", 3, "--json", out_json, "--quiet")
    assert code == 0, err
    result = json.loads(out_json.read_text())
    assert list(result["models"]) == list(ROWS)
    p = result["protocol"]
    assert p["protocol"] == "basket" and p["k"] == 3 and p["cases"] > 50 and p["items"] == 20
    together, knn, popular = (result["models"][r] for r in ROWS)
    assert together["recall@3"] == together["ndcg@3"] == together["map@3"] == 1.0  # the kit's other part, first
    assert together["precision@3"] == pytest.approx(1 / 3) and together["products_with_list"] == 10
    assert popular["recall@3"] < 0.2 and popular["from_list"] == 0.0
    assert knn["recall@3"] <= together["recall@3"]
    assert "| bought-together | 0.3333 | 1.0000 |" in out
    assert "| row | precision@3" in out_json.with_suffix(".md").read_text()

    code, _, _ = run(capsys, "--dataset", path, "--format", "csv", "--columns", MAPPING, "--protocol", "basket",
                     "--split-date", "2024-04-21", "--k", 3, "--json", tmp_path / "two.json", "--quiet",
                     "--models", "popularity,bought-together")
    assert code == 0 and list(json.loads((tmp_path / "two.json").read_text())["models"]) == [
        "popularity", "bought-together"]


@pytest.mark.parametrize("extra,message", [
    (["--models", "hybrid"], "basket protocol rows"),
    (["--tune"], "no --tune"),
    (["--split-date", "2030-01-01"], "no test order"),
    (["--split-date", "2024-04-21", "--k", "25"], "too few candidates"),
])
def test_bad_basket_options_are_one_readable_line(tmp_path, capsys, extra, message):
    path = tmp_path / "shop.csv"
    shop_log().to_csv(path, index=False)
    args = ["--dataset", path, "--format", "csv", "--columns", MAPPING, "--protocol", "basket",
            "--json", tmp_path / "x.json", "--quiet", *extra]
    if "--split-date" not in extra:
        args += ["--split-date", "2024-04-21"]
    code, _, err = run(capsys, *args)
    assert code == 2 and err.startswith("evaluate: ") and message in err and len(err.strip().splitlines()) == 1
    assert not Path(tmp_path / "x.json").exists()

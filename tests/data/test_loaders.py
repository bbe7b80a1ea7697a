"""Real-log loaders on the shared public files and on small generic CSV/Parquet logs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recsys.constants import ADD_TO_CART, PURCHASE, RETURN, VIEW
from recsys.data.ids import stable_id
from recsys.data.loaders import parse_column_mapping, read_event_log
from recsys.data.online_retail import categorize_description, retail_product_id
from recsys.data.synthetic import PRODUCT_COLUMNS, SHOP_EVENT_COLUMNS, USER_COLUMNS

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
if not DATA.is_dir():  # CI lays shared/ beside the clone; a developer has it at /work/shared
    DATA = Path("/work/shared/data")
RETAIL = DATA / "online-retail" / "online_retail.parquet"
REES46 = DATA / "rees46-sample" / "2019-Oct-sample.csv"
needs_data = pytest.mark.skipif(not RETAIL.is_file() or not REES46.is_file(), reason="shared/data not present")


@pytest.fixture(scope="module")
def retail():
    return read_event_log(RETAIL, "online-retail")


def _check_schema(shop):
    assert tuple(shop.users.columns) == USER_COLUMNS
    assert tuple(shop.products.columns) == PRODUCT_COLUMNS
    assert tuple(shop.events.columns) == SHOP_EVENT_COLUMNS
    assert shop.events["client_event_id"].is_unique
    assert set(shop.events["user_id"]) == set(shop.users["user_id"])
    assert set(shop.events["product_id"]) == set(shop.products["product_id"])
    assert (shop.events[["user_id", "product_id"]] > 0).all().all()


@needs_data
def test_online_retail_counts_match_source_figures(retail):
    # SOURCE.md: 541,909 rows, 135,080 without CustomerID -> 406,829 rows with a customer, of which
    # 8,905 are cancellation lines (of its 9,288) and 40 other lines have a zero price: 406,789 events.
    _check_schema(retail)
    counts = retail.events["event_type"].value_counts().to_dict()
    assert counts == {PURCHASE: 406_829 - 8_905 - 40, RETURN: 8_905}
    # 4,372 customers; customer 13256 has only a zero-price line
    assert len(retail.users) == 4_371 and 13256 not in set(retail.users["user_id"])
    assert len(retail.products) <= 4_070 and retail.users["country"].nunique() <= 38
    assert (retail.events.loc[retail.events["event_type"] == PURCHASE, "price"] > 0).all()


@needs_data
def test_online_retail_first_row_mapping(retail):
    """Row 0: invoice 536365, 85123A WHITE HANGING HEART T-LIGHT HOLDER, 2010-12-01 08:26, customer 17850."""
    ev = retail.events.set_index("client_event_id").loc["online-retail-0"]
    assert ev["user_id"] == 17850 and ev["product_id"] == 85123001 and ev["session_id"] == "536365"
    assert ev["timestamp"] == pd.Timestamp("2010-12-01 08:26:00", tz="UTC").value // 10**6
    assert ev["price"] == 2.55 and ev["event_type"] == PURCHASE
    product = retail.products.set_index("product_id").loc[85123001]
    assert product["name"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert product["category"] == "Candles & Lighting"
    assert retail.users.set_index("user_id").loc[17850, "country"] == "GB"


@needs_data
def test_online_retail_product_ids_are_stable_and_distinct(retail):
    codes = pd.read_parquet(RETAIL, columns=["StockCode"])["StockCode"].str.upper().unique()
    ids = [retail_product_id(c) for c in codes]
    assert len(set(ids)) == len(codes)  # injective on the file's codes
    assert retail_product_id("85123A") == 85123001 and retail_product_id("85123a") == 85123001
    assert retail_product_id("15056BL") == 15056066 and retail_product_id("22423") == 22423000
    assert retail_product_id("POST") == stable_id("POST")
    assert retail.products.loc[retail.products["category"] == "Service", "product_id"].eq(stable_id("POST")).any()
    assert (retail.products["category"] == "Other").mean() < 0.2


@pytest.mark.parametrize(
    "description, category",
    [("JUMBO BAG RED RETROSPOT", "Bags"), ("PAPER CHAIN KIT 50'S CHRISTMAS", "Christmas"),
     ("REGENCY CAKESTAND 3 TIER", "Kitchen & Dining"), ("POSTAGE", "Service"), ("SETTING", "Other")],
)
def test_categorize_description(description, category):
    assert categorize_description(description) == category


@needs_data
def test_rees46_sample():
    shop = read_event_log(REES46, "rees46")
    _check_schema(shop)
    assert shop.events["event_type"].value_counts().to_dict() == {VIEW: 987, PURCHASE: 10, ADD_TO_CART: 3}
    assert len(shop.users) == 330  # distinct user_id in the file (SOURCE.md says 331)
    first = shop.events.set_index("client_event_id").loc["rees46-1"]
    assert first["product_id"] == 3900821 and first["user_id"] == 554748717
    assert first["session_id"] == "9333dfbd-b87a-4708-9857-6336556b0fcc"
    assert first["timestamp"] == pd.Timestamp("2019-10-01", tz="UTC").value // 10**6
    product = shop.products.set_index("product_id").loc[3900821]
    assert product["category"] == "appliances" and product["name"] == "aqua appliances environment water heater"
    assert shop.products.set_index("product_id").loc[44600062, "category"] == "unknown"


def _write(tmp_path: Path, rows: list[dict], name="log.csv") -> Path:
    path = tmp_path / name
    frame = pd.DataFrame(rows)
    frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    return path


ROWS = [
    {"uid": "alice", "sku": "A-1", "ts": "2024-05-01T10:00:00Z", "kind": "view", "amount": None, "cc": "FR"},
    {"uid": "alice", "sku": "A-1", "ts": "2024-05-01T10:01:00Z", "kind": "Purchase", "amount": 12.5, "cc": "FR"},
    {"uid": "42", "sku": "B-2", "ts": "2024-05-02 11:00:00", "kind": "add-to-cart", "amount": 3.0, "cc": None},
    {"uid": "42", "sku": "B-2", "ts": "2024-05-02 11:00:00", "kind": "add-to-cart", "amount": 3.0, "cc": None},
    {"uid": "42", "sku": "B-2", "ts": "2024-05-02 11:05:00", "kind": "remove_from_cart", "amount": 3.0, "cc": None},
]
MAPPING = "user=uid,item=sku,timestamp=ts,event_type=kind,price=amount,country=cc"


@pytest.mark.parametrize("name", ["log.csv", "log.parquet"])
def test_generic_log_maps_ids_types_and_times(tmp_path, name):
    shop = read_event_log(_write(tmp_path, ROWS, name), "csv", columns=MAPPING)
    _check_schema(shop)
    ev = shop.events
    assert ev["event_type"].tolist() == [VIEW, PURCHASE, ADD_TO_CART, ADD_TO_CART]  # remove_from_cart skipped
    assert set(ev["user_id"]) == {42, stable_id("alice")}
    assert set(ev["product_id"]) == {stable_id("A-1"), stable_id("B-2")}
    assert ev["timestamp"].tolist()[:2] == [1714557600000, 1714557660000]
    assert shop.users.set_index("user_id").loc[stable_id("alice"), "country"] == "FR"
    products = shop.products.set_index("product_id")
    assert products.loc[stable_id("A-1"), "price"] == 12.5 and products.loc[stable_id("A-1"), "name"] == "item A-1"
    again = read_event_log(_write(tmp_path, ROWS, name), "csv", columns=MAPPING)
    assert again.events["client_event_id"].tolist() == ev["client_event_id"].tolist()


def test_generic_log_defaults_to_purchases_and_epoch_numbers(tmp_path):
    rows = [{"u": 1, "i": 7, "t": 1714557600}, {"u": 2, "i": 7, "t": 1714557601}]
    shop = read_event_log(_write(tmp_path, rows), "csv", columns="user=u, item=i, timestamp=t")
    assert shop.events["event_type"].eq(PURCHASE).all()
    assert shop.events["timestamp"].tolist() == [1714557600000, 1714557601000]
    assert shop.products["category"].tolist() == ["unknown"]


def test_generic_log_event_id_column(tmp_path):
    rows = [dict(r, eid=f"e{n}") for n, r in enumerate(ROWS)]
    shop = read_event_log(_write(tmp_path, rows), "csv", columns=MAPPING + ",event_id=eid")
    assert shop.events["client_event_id"].tolist() == ["csv-e0", "csv-e1", "csv-e2", "csv-e3"]


@pytest.mark.parametrize(
    "columns, message",
    [
        (None, "needs columns="),
        ("user=uid,item=sku", r"lacks required key\(s\) \['timestamp'\]"),
        ("user=uid,item=sku,timestamp=when", r"\['when'\] named in the mapping are not in the file"),
        ("user=uid,item=sku,timestamp=ts,colour=cc", "unknown mapping key 'colour'"),
        ("user=uid,item,timestamp=ts", "bad column mapping entry 'item'"),
        ("user=uid,user=sku,item=sku,timestamp=ts", "'user' given twice"),
        ("user=uid,item=sku,timestamp=uid", "'uid'.*cannot parse"),
        ("user=uid,item=sku,timestamp=ts,event_type=sku",
         r"every row was rejected.*unknown_event_type 5 \(e\.g\. \['A-1', 'B-2'\]\)"),
        ("user=uid,item=sku,timestamp=ts,event_type=cc", "'cc' has 3 missing event types"),
        ("user=uid,item=sku,timestamp=ts,price=kind", "price column 'kind': not a number"),
        ("user=cc,item=sku,timestamp=ts", "'cc' has 3 missing ids"),
    ],
)
def test_generic_log_bad_mapping_errors(tmp_path, columns, message):
    with pytest.raises(ValueError, match=message):
        read_event_log(_write(tmp_path, ROWS), "csv", columns=columns)


def test_format_and_path_errors(tmp_path):
    path = _write(tmp_path, ROWS)
    with pytest.raises(ValueError, match="unknown log format 'json'"):
        read_event_log(path, "json")
    with pytest.raises(ValueError, match="only for fmt='csv'"):
        read_event_log(path, "rees46", columns=MAPPING)
    with pytest.raises(ValueError, match="not a REES46 log"):
        read_event_log(path, "rees46")
    with pytest.raises(ValueError, match="not an Online Retail file"):
        read_event_log(path, "online-retail")
    with pytest.raises(FileNotFoundError):
        read_event_log(tmp_path / "missing.csv", "csv", columns=MAPPING)


def test_parse_column_mapping():
    assert parse_column_mapping(" user = a , item=b,timestamp=c ") == {"user": "a", "item": "b", "timestamp": "c"}

"""``python -m recsys evaluate`` end to end: REES46 sample, a tiny mapped CSV, --test-file, errors, tuning."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.cli import main
from recsys.evaluation.models import MODEL_NAMES
from recsys.families.lightfm_cf import plain_lightfm

pytestmark = pytest.mark.slow  # whole evaluations through the CLI, up to a minute each: not in make test-fast

REES46 = Path(__file__).resolve().parents[3] / "shared" / "data" / "rees46-sample" / "2019-Oct-sample.csv"
MAPPING = "user=uid,item=sku,timestamp=when,event_type=kind,category=cat,name=label,price=cost"
METRICS = ("precision@{k}", "recall@{k}", "ndcg@{k}", "map@{k}", "auc", "coverage", "diversity", "novelty")
FAST = ["--quiet", "--no-plots"]


def tiny_log(days=range(10), seed=0) -> pd.DataFrame:
    """24 users in two tastes (A: items a0..a7, B: b0..b7), a few views and purchases per day."""
    rng = np.random.default_rng(seed)
    rows = []
    for day in days:
        for user in range(24):
            taste = "a" if user < 12 else "b"
            for item in rng.choice(8, size=2, replace=False):
                kind = "purchase" if rng.random() < 0.6 else "view"
                rows.append({"uid": f"u{user}", "sku": f"{taste}{item}", "when": f"2024-05-{day + 1:02d}T10:00:00",
                             "kind": kind, "cat": f"cat-{taste}", "label": f"{taste} thing {item}",
                             "cost": 2.5 if taste == "a" else 9.0})
    return pd.DataFrame(rows)


@pytest.fixture
def csv_log(tmp_path) -> Path:
    path = tmp_path / "log.csv"
    tiny_log().to_csv(path, index=False)
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.skipif(not REES46.is_file(), reason="shared REES46 sample not present")
def test_rees46_sample_end_to_end(tmp_path, capsys):
    out_json = tmp_path / "rees46.json"
    code, out, _ = run(capsys, "--dataset", REES46, "--format", "rees46", "--split-date", "2019-10-01T00:12:00",
                       "--k", 5, "--json", out_json, "--quiet")
    assert code == 0
    result = json.loads(out_json.read_text())
    assert list(result["models"]) == list(MODEL_NAMES)
    protocol = result["protocol"]
    assert protocol["split"]["cutoff"].startswith("2019-10-01T00:12:00") and protocol["k"] == 5
    assert protocol["users"] > 0 and protocol["items"] > 5 and protocol["format"] == "rees46"
    for name, m in result["models"].items():
        if m.get("available", True):
            for metric in METRICS:
                assert metric.format(k=5) in m, (name, metric)
            assert 0.0 <= m["precision@5"] <= 1.0 and len(m["curves"]["precision"]) == 20
    assert "| hybrid |" in out and out_json.with_suffix(".md").is_file()
    png = tmp_path / "rees46_curves.png"
    if importlib.util.find_spec("matplotlib"):
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and result["plot"] == str(png)
    else:
        assert not png.exists() and "matplotlib" in result["plot_note"]
    assert "| model | precision@5" in out_json.with_suffix(".md").read_text()
    # twelve minutes of training: the time validation period is at most a third of it, not a whole day
    selection = result["selection"]
    tried = selection["validation"]["tried"]
    assert selection["validation_users"] > 0 and tried and all(t["days"] * 1440 <= 13 / 3 for t in tried)
    assert selection["validation_users"] == selection["validation"]["users"]
    assert f"{selection['validation_users']} users" in out_json.with_suffix(".md").read_text()
    assert all(row["validation"] for row in selection["candidates"] if row["family"] != "als")


def test_tiny_csv_with_a_column_mapping(tmp_path, csv_log, capsys):
    out_json = tmp_path / "tiny.json"
    code, out, _ = run(capsys, "--dataset", csv_log, "--format", "csv", "--columns", MAPPING, "--test-days", 3,
                       "--k", 3, "--json", out_json, "--models", "popularity,item-knn,hybrid",
                       "--positive-events", "PURCHASE", *FAST)
    assert code == 0, out
    result = json.loads(out_json.read_text())
    assert list(result["models"]) == ["popularity", "item-knn", "hybrid"]
    p = result["protocol"]
    assert p["split"]["how"] == "test-days" and p["split"]["cutoff"].startswith("2024-05-08")
    assert p["positives"] == ["PURCHASE"] and p["items"] == 16 and 0 < p["users"] <= 24
    assert p["cold_users"] + p["warm_users"] == p["users"]
    # two clean tastes: item-kNN must beat popularity by far
    assert result["models"]["item-knn"]["auc"] > result["models"]["popularity"]["auc"]
    hybrid = result["models"]["hybrid"]
    assert hybrid["config"]["max_per_category"] is not None and "precision@3" in hybrid["without_rerank"]
    assert sum(g["users"] for g in hybrid["groups"].values()) == p["users"]


def test_fixed_test_file(tmp_path, capsys):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    tiny_log(range(7)).to_csv(train, index=False)
    tiny_log(range(7, 10), seed=1).to_csv(test, index=False)
    out_json = tmp_path / "fixed.json"
    code, _, err = run(capsys, "--dataset", train, "--format", "csv", "--columns", MAPPING, "--test-file", test,
                       "--k", 3, "--json", out_json, "--models", "random,popularity", *FAST)
    assert code == 0, err
    p = json.loads(out_json.read_text())["protocol"]
    assert p["split"]["how"] == "test-file" and p["split"]["cutoff"] is None and p["test_file"] == str(test)
    assert p["split"]["test_period"][0].startswith("2024-05-08") and p["train_events"] == len(tiny_log(range(7)))


@pytest.mark.parametrize("columns, message", [
    ("user=uid,item=nope,timestamp=when", "nope"),
    ("user=uid,timestamp=when", "lacks required key"),
    ("user=uid,item=sku,timestamp=when,colour=cat", "unknown mapping key"),
])
def test_bad_column_mapping_is_a_clear_error(csv_log, capsys, columns, message):
    code, _, err = run(capsys, "--dataset", csv_log, "--format", "csv", "--columns", columns, *FAST)
    assert code == 2 and err.startswith("evaluate: ") and message in err


def test_empty_test_set_is_a_clear_error(csv_log, capsys):
    code, _, err = run(capsys, "--dataset", csv_log, "--format", "csv", "--columns", MAPPING,
                       "--split-date", "2030-01-01", *FAST)
    assert code == 2 and "no test events" in err
    code, _, err = run(capsys, "--dataset", csv_log, "--format", "csv", "--columns", MAPPING,
                       "--split-date", "2024-05-08", "--positive-events", "WISHLIST", *FAST)
    assert code == 2 and "empty test set" in err


def test_other_input_errors(csv_log, tmp_path, capsys):
    base = ["--dataset", csv_log, "--format", "csv", "--columns", MAPPING, *FAST]
    assert run(capsys, *base, "--models", "popularity,magic")[0] == 2
    assert run(capsys, *base, "--split-date", "next tuesday")[0] == 2
    code, _, err = run(capsys, "--dataset", tmp_path / "missing.csv", "--format", "csv", "--columns", MAPPING, *FAST)
    assert code == 2 and "not found" in err


def test_als_row_marked_unavailable_without_implicit(tmp_path, csv_log, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "implicit.als", None)
    out_json = tmp_path / "no_als.json"
    code, out, _ = run(capsys, "--dataset", csv_log, "--format", "csv", "--columns", MAPPING, "--k", 3,
                       "--json", out_json, "--models", "popularity,als", *FAST)
    assert code == 0
    als = json.loads(out_json.read_text())["models"]["als"]
    assert als["available"] is False and "implicit" in als["reason"]
    assert "| als | unavailable:" in out_json.with_suffix(".md").read_text()


def test_tuning_and_reusing_the_tuned_configuration(tmp_path, csv_log, capsys):
    tuned_json = tmp_path / "tuned.json"
    code, out, err = run(capsys, "--dataset", csv_log, "--format", "csv", "--columns", MAPPING, "--k", 3,
                         "--json", tuned_json, "--models", "hybrid,lightfm-cf", "--tune", "--tune-minutes", 0.1,
                         "--threads", 1, *FAST)
    assert code == 0, err
    result = json.loads(tuned_json.read_text())
    tuning = result["tuning"]
    assert tuning["trials_run"] >= 1 and tuning["seconds"] < 0.1 * 60 + 30
    assert result["models"]["hybrid"]["config"] == tuning["best"] == result["config"]["hybrid"]
    assert "RECSYS_EPOCHS" in tuning["settings"] and "tuned hybrid configuration" in out
    plain = dataclasses.asdict(plain_lightfm(seed=42, threads=1))
    del plain["user_features"], plain["item_features"]  # ids only
    assert result["models"]["lightfm-cf"]["config"]["params"] == plain  # the baseline is not tuned
    assert plain["loss"] == "warp"
    again = tmp_path / "again.json"
    code, _, _ = run(capsys, "--dataset", csv_log, "--format", "csv", "--columns", MAPPING, "--k", 3,
                     "--json", again, "--models", "hybrid", "--hybrid-config", tuned_json, "--threads", 1, *FAST)
    assert code == 0
    reused = json.loads(again.read_text())["models"]["hybrid"]
    assert reused["config"] == tuning["best"]
    assert reused["ndcg@3"] == pytest.approx(result["models"]["hybrid"]["ndcg@3"])  # seeded: same numbers


def test_per_customer_protocol_with_exclude_seen_and_the_auto_row(tmp_path, csv_log, capsys):
    out_json = tmp_path / "per_customer.json"
    code, out, _ = run(capsys, "--dataset", csv_log, "--format", "csv", "--columns", MAPPING, "--k", 3,
                       "--protocol", "per-customer", "--test-fraction", 0.3, "--exclude-seen", "interacted",
                       "--models", "popularity", "--threads", 1, "--json", out_json, *FAST)
    assert code == 0, out
    result = json.loads(out_json.read_text())
    p, selection = result["protocol"], result["selection"]
    assert p["split"]["how"] == "per-customer" and p["split"]["value"] == "0.3" and p["split"]["cutoff"] is None
    assert p["exclude_seen"] == "interacted" and "VIEW" in p["excluded"]
    assert selection["validation_split"] == "each customer's newest 30% of training events"
    assert selection["metric"] == "ndcg@10" and selection["auto"]["chosen"] == selection["chosen"]
    assert set(selection["test"]) == {row["name"] for row in selection["candidates"]}
    assert f"| **auto** (= {selection['chosen']}) |" in out
    md = out_json.with_suffix(".md").read_text()
    assert "exclude-seen `interacted`" in md and "## Model selection" in md


def test_exclude_seen_defaults_to_the_setting_and_selection_can_be_switched_off(tmp_path, csv_log, capsys,
                                                                                 monkeypatch):
    from recsys.settings import get_settings

    monkeypatch.setenv("RECSYS_EXCLUDE_SEEN", "VIEW,PURCHASE")
    get_settings.cache_clear()
    try:
        out_json = tmp_path / "env.json"
        code, out, _ = run(capsys, "--dataset", csv_log, "--format", "csv", "--columns", MAPPING, "--test-days", 3,
                           "--k", 3, "--models", "popularity", "--no-selection", "--json", out_json, *FAST)
    finally:
        get_settings.cache_clear()
    assert code == 0, out
    result = json.loads(out_json.read_text())
    assert result["protocol"]["exclude_seen"] == "VIEW,PURCHASE" and result["selection"] is None
    assert "auto" not in out


@pytest.mark.parametrize(("args", "message"), [
    (["--protocol", "per-customer", "--split-date", "2024-05-05"], "per-customer splits each customer"),
    (["--exclude-seen", "bought", "--test-days", "3"], "exclude_seen must be"),
    (["--selection-metric", "auc", "--test-days", "3"], "--selection-metric"),
    (["--protocol", "per-customer", "--test-fraction", "1.5"], "test fraction must be in"),
])
def test_bad_protocol_options_are_clear_errors(csv_log, capsys, args, message):
    code, _, err = run(capsys, "--dataset", csv_log, "--format", "csv", "--columns", MAPPING, *args, *FAST)
    assert code == 2 and message in err

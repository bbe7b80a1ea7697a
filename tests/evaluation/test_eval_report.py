"""Markdown, JSON and PNG outputs of an evaluation run."""

from __future__ import annotations

import json
import sys

import pytest

from recsys.evaluation import report


def result(k=10) -> dict:
    def model(p, ndcg, **extra):
        return {f"precision@{k}": p, f"recall@{k}": p * 2, f"ndcg@{k}": ndcg, f"map@{k}": p / 2, "auc": 0.8,
                "coverage": 0.3, "diversity": 0.7, "novelty": 4.0, "users": 50, "fit_seconds": 1.25,
                "curves": {"k": [1, 2, 3], "precision": [p, p, p], "recall": [p, 2 * p, 3 * p],
                           "ndcg": [ndcg, ndcg, ndcg]},
                "groups": {"cold": {f"precision@{k}": p / 3, f"ndcg@{k}": ndcg / 3, "auc": 0.6, "users": 5},
                           "warm": {f"precision@{k}": p, f"ndcg@{k}": ndcg, "auc": 0.81, "users": 45}},
                **extra}

    return {
        "protocol": {
            "dataset": "retail.parquet", "format": "online-retail", "k": k,
            "split": {"how": "split-date", "value": "2011-10-01", "cutoff": "2011-10-01T00:00:00+00:00",
                      "train_period": ["2010-12-01", "2011-09-30"], "test_period": ["2011-10-02", "2011-12-09"]},
            "positives": ["PURCHASE"], "training_signal": "weights", "excluded": "already bought",
            "counted": "seen in training", "users": 50, "items": 300, "positive_pairs": 400, "excluded_pairs": 900,
            "cold_max_items": 10, "cold_users": 5, "warm_users": 45, "new_items": 20, "new_item_users": 12,
        },
        "models": {
            "popularity": model(0.04, 0.05),
            "als": {"available": False, "reason": "the 'implicit' package is not installed"},
            "hybrid": model(0.09, 0.1, new_items={f"precision@{k}": 0.02, f"ndcg@{k}": 0.03, "auc": 0.7},
                            without_rerank={f"precision@{k}": 0.08, f"ndcg@{k}": 0.095},
                            config={"max_per_category": 3, "trending_weight": 0.5}),
        },
        "tuning": {"best": {"params": {"epochs": 45}}, "settings": {"RECSYS_EPOCHS": 45}, "trials_run": 12,
                   "seconds": 600.0, "budget_minutes": 15, "objective": "ndcg@10", "validation": "last 70 days"},
    }


def test_markdown_states_the_protocol_and_marks_the_best_values():
    md = report.markdown(result())
    assert "split: split-date 2011-10-01" in md and "50 users, 300 products" in md and "k = 10" in md
    assert "| hybrid | **0.0900** | **0.1800** | **0.1000** |" in md
    assert "| popularity | 0.0400 |" in md
    assert "| als | unavailable: the 'implicit' package is not installed |" in md
    assert "**cold** = users with at most 10 training products (5)" in md
    assert "**new** = products first seen in the test (20), ranked among themselves for the users who " \
           "bought them (12)" in md
    assert "| model | cold precision@10 | cold ndcg@10 | cold auc | warm precision@10 |" in md
    assert "| popularity | 0.0133 | 0.0167 | 0.6000 | 0.0400 | 0.0500 | 0.8100 | – | – | – |" in md
    assert "RECSYS_EPOCHS=45" in md and "12 trials" in md
    assert "re-ranking (max_per_category 3, trending_weight 0.5) against its model alone: precision@10 0.0900 " \
           "vs 0.0800, ndcg@10 0.1000 vs 0.0950." in md


def test_write_outputs_writes_json_markdown_and_png(tmp_path):
    pytest.importorskip("matplotlib")
    paths = report.write_outputs(result(), tmp_path / "bench" / "run.json")
    saved = json.loads((tmp_path / "bench" / "run.json").read_text())
    assert saved["models"]["hybrid"]["precision@10"] == 0.09 and saved["models"]["als"]["available"] is False
    assert paths["png"].endswith("run_curves.png") and (tmp_path / "bench" / "run_curves.png").stat().st_size > 1000
    assert "![precision, recall and NDCG" in (tmp_path / "bench" / "run.md").read_text()


def test_no_plot_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    data = result()
    paths = report.write_outputs(data, tmp_path / "run.json")
    assert "png" not in paths and not (tmp_path / "run_curves.png").exists()
    assert "matplotlib" in json.loads((tmp_path / "run.json").read_text())["plot_note"]

"""recsys.evaluation.compare: two registry rows side by side."""

from __future__ import annotations

from recsys.evaluation.compare import compare_rows, format_table

A = {"model_id": "A1", "model_type": "HYBRID", "status": "LIVE", "version": 1, "train_date": "2026-11-19",
     "training_samples_count": 1000, "decision": None,
     "params": {"epochs": 30, "loss": "bpr", "item_features": ["name"], "train_days": ["2026-08-21", "2026-11-18"]},
     "metrics": {"new": {"ndcg@10": 0.2, "auc": 0.9, "users": 50},
                 "live": {"ndcg@10": 0.1}, "protocol": {"day": "2026-11-19", "users": 50, "positives": 80}}}
B = {"model_id": "B2", "model_type": "HYBRID", "status": "ARCHIVED", "version": 2, "train_date": "2026-11-20",
     "training_samples_count": 1100, "decision": "archived: worse",
     "params": {"epochs": 10, "loss": "warp", "item_features": [], "train_days": ["2026-08-22", "2026-11-19"],
                "new_param": 3},
     "metrics": {"ndcg@10": 0.25}}  # an older row: metrics not nested, no protocol


def test_rows_pair_every_field_and_diff_the_numbers():
    rows = {field: (a, b, d) for field, a, b, d in compare_rows(A, B)}
    assert rows["training window"] == ("2026-08-21 .. 2026-11-18", "2026-08-22 .. 2026-11-19", None)
    assert rows["samples"] == (1000, 1100, 100)
    assert rows["params.epochs"] == (30, 10, -20)
    assert rows["params.loss"] == ("bpr", "warp", None)
    assert rows["params.new_param"] == (None, 3, None)
    assert "params.train_days" not in rows
    assert rows["metrics.ndcg@10"] == (0.2, 0.25, 0.05)  # the model's own numbers, not LIVE's
    assert rows["metrics.auc"] == (0.9, None, None)
    assert rows["validation.day"] == ("2026-11-19", None, None)
    assert rows["status"] == ("LIVE", "ARCHIVED", None)


def test_table_has_one_line_per_row_and_shows_the_difference():
    rows = compare_rows(A, B)
    table = format_table(rows, "A1", "B2").splitlines()
    assert len(table) == len(rows) + 1 and "A A1" in table[0] and "B - A" in table[0]
    epochs = next(line for line in table if line.startswith("params.epochs"))
    assert epochs.split() == ["params.epochs", "30", "10", "-20"]
    features = next(line for line in table if line.startswith("params.item_features"))
    assert features.split() == ["params.item_features", "name", "(none)"]

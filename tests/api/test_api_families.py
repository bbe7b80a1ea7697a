"""Each served family (lightfm-cf, implicit ALS, item-kNN) through the whole path: trained by the nightly
trainer on the synthetic shop, saved with checksums, registered with its ``model_type``, published,
precomputed, then answered by the API from the cache and scored on the fly from its published files."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from sqlalchemy import text

from api_helpers import AppClient, served_shop
from recsys.api.schemas import ModelStatus, RecommendationsResponse
from recsys.artifacts import model_key
from recsys.keys import recs_key

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
LAST_DAY = dt.date(2026, 11, 20)  # the synthetic shop's last day of events
REASONS = ("Customers like you also bought...", "Because you viewed ", "Popular in ", "Trending now",
           "New arrival")  # a model list's reasons (recsys.ranking.reasons)
CONFIGS = {"lightfm-cf": {"params": {"epochs": 5, "no_components": 16, "loss": "warp"}},
           "als": {"factors": 16, "regularization": 0.05, "iterations": 5, "alpha": 10.0},
           "item-knn": {"neighbours": 50}}


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def pipeline(request, pg_engine, pg_url, small_shop, tmp_path_factory):
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model

    family = request.param

    def train(engine, store):
        return train_model(engine, store, LAST_DAY + dt.timedelta(days=1), TrainParams(threads=1, seed=3),
                           family=family, config=CONFIGS[family])["model_id"]

    with served_shop(pg_engine, pg_url, small_shop, tmp_path_factory.mktemp(f"family-{family}"), train) as shop:
        yield {**shop, "family": family}


@pytest.fixture(scope="module")
async def api(pipeline):
    async with AppClient(pipeline["settings"]) as client:
        yield client


def _heavy_cached_user(pipeline) -> int:
    with pipeline["engine"].connect() as conn:
        rows = conn.execute(text("SELECT user_id FROM user_events WHERE event_type <> 'IMPRESSION' "
                                 "GROUP BY user_id HAVING count(*) >= 50 ORDER BY user_id")).all()
    cached = [int(u) for (u,) in rows if pipeline["redis"].exists(recs_key(u))]
    assert cached, "heavy users of the shop should have precomputed lists"
    return cached[0]


async def _recs(api, user_id: int) -> RecommendationsResponse:
    r = await api.get("/recommendations", params={"user_id": user_id, "num_items": 10})
    assert r.status_code == 200, r.text
    return RecommendationsResponse.model_validate(r.json())


def test_the_row_records_the_family_and_its_configuration(pipeline):
    from recsys import registry

    row = registry.get_model(pipeline["engine"], pipeline["model_id"])
    assert row.model_type == pipeline["family"]
    assert row.params["family"] == pipeline["family"] and row.params["config"] == CONFIGS[pipeline["family"]]
    assert {"model.npz", "model.json"} <= set(row.artifacts)
    assert pipeline["precomputed"]["users"] > 0


async def test_cache_hit_then_on_the_fly_scoring_from_the_published_files(api, pipeline):
    user = _heavy_cached_user(pipeline)
    body = await _recs(api, user)
    assert body.source == "personalized" and body.model_version == pipeline["model_id"]
    stored = json.loads(pipeline["redis"].get(recs_key(user)))
    assert stored["model_version"] == pipeline["model_id"]
    assert all(r.startswith(REASONS) for r in stored["reasons"]), stored["reasons"]
    pipeline["redis"].delete(recs_key(user))
    body = await _recs(api, user)
    assert body.source == "personalized" and body.model_version == pipeline["model_id"]
    assert json.loads(pipeline["redis"].get(recs_key(user)))["model_version"] == pipeline["model_id"]


async def test_served_scores_are_the_models_scores(api, pipeline):
    """The API's on-the-fly scores of a user are the trained model's own scores for the trained products."""
    from recsys import registry
    from recsys.families import load_model
    from recsys.data.frames import load_products

    serving = api.app.state.serving.embeddings
    assert serving is not None and serving.model_id == pipeline["model_id"]
    user = _heavy_cached_user(pipeline)
    top = serving.score_user(serving.user_vector(user), 20)
    model = load_model(pipeline["store"], registry.get_model(pipeline["engine"], pipeline["model_id"]))
    products = load_products(pipeline["engine"])
    products = products[products["product_id"].isin([p for p, _ in top])].reset_index(drop=True)
    expected = dict(zip(products["product_id"], model.score(_user_frame(user), products)[0]))
    np.testing.assert_allclose([s for _, s in top], [expected[p] for p, _ in top], rtol=1e-4, atol=1e-5)
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)


def _user_frame(user: int):
    import pandas as pd

    return pd.DataFrame({"user_id": [user], "country": [None], "language": [None], "device_type": [None]})


async def test_model_status_shows_the_family(api, pipeline):
    status = ModelStatus.model_validate((await api.get("/models/status")).json())
    assert status.model_version == pipeline["model_id"] and status.model_type == pipeline["family"]


def test_an_altered_published_file_is_refused(pipeline, tmp_path):
    from recsys import registry
    from recsys.serving.model_cache import load_served
    from recsys.integrity import ArtifactIntegrityError

    store, model_id = pipeline["store"], pipeline["model_id"]
    name = "neighbour_data.npy" if pipeline["family"] == "item-knn" else "item_vectors.npy"
    path = store._path(model_key(model_id, name))
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-4] + b"\x00\x00\x80\x3f")
        with pytest.raises(ArtifactIntegrityError):
            load_served(store, model_id, tmp_path, registry.get_artifacts(pipeline["engine"], model_id))
    finally:
        path.write_bytes(original)


async def test_similar_items_come_from_the_served_model(api, pipeline):
    """A trained product's similar items: the model's own neighbours (item-kNN: its neighbour row; factor
    models: the cosine of the item vectors), answered under the model's version."""
    serving = api.app.state.serving.embeddings
    product = int(serving.item_ids[0])
    neighbours = serving.similar_items(product, 10)
    assert neighbours and product not in {p for p, _ in neighbours}
    assert [s for _, s in neighbours] == sorted((s for _, s in neighbours), reverse=True)
    r = await api.get("/recommendations/similar", params={"product_id": product, "num_items": 10})
    assert r.status_code == 200 and r.json()["items"] and r.json()["model_version"] == pipeline["model_id"]

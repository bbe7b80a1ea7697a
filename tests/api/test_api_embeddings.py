"""In-memory embeddings: scoring against a brute-force reference, similar items, bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest

from recsys.api.embeddings import EmbeddingsError, ModelEmbeddings, load_embeddings
from recsys.artifacts import model_key


def make(seed=0, users=6, items=40, dim=5) -> ModelEmbeddings:
    rng = np.random.default_rng(seed)
    user_vectors = np.hstack([rng.normal(size=(users, dim - 1)), np.ones((users, 1))])
    item_vectors = rng.normal(size=(items, dim))
    return ModelEmbeddings.from_arrays("m1", np.arange(1, users + 1), user_vectors,
                                       np.arange(100, 100 + items), item_vectors)


def test_score_user_matches_brute_force_and_excludes():
    emb = make()
    vector = emb.user_vector(3)
    scores = {int(p): float(v @ vector) for p, v in zip(emb.item_ids, emb.item_vectors)}
    excluded = {int(emb.item_ids[0]), int(emb.item_ids[5])}
    expected = sorted((p for p in scores if p not in excluded), key=lambda p: -scores[p])[:7]
    top = emb.score_user(vector, 7, exclude=excluded)
    assert [p for p, _ in top] == expected
    assert all(abs(s - scores[p]) < 1e-4 for p, s in top)


def test_similar_items_is_cosine_without_the_bias():
    emb = make(seed=1)
    target = int(emb.item_ids[4])
    body = emb.item_vectors[:, :-1].astype(np.float64)
    cos = body @ body[4] / (np.linalg.norm(body, axis=1) * np.linalg.norm(body[4]))
    expected = [int(emb.item_ids[i]) for i in np.argsort(-cos) if i != 4][:5]
    assert [p for p, _ in emb.similar_items(target, 5)] == expected
    assert emb.similar_items(999_999, 5) == []


def test_unknown_user_and_wrong_shapes():
    emb = make()
    assert emb.user_vector(12345) is None
    with pytest.raises(EmbeddingsError, match="shape"):
        emb.score_user(np.ones(3), 5)
    with pytest.raises(EmbeddingsError, match="item_ids"):
        ModelEmbeddings.from_arrays("m", [1], np.ones((1, 3)), [1, 2], np.ones((3, 3)))


def test_load_from_the_store_and_reject_a_file_without_the_arrays(local_store):
    emb = make()
    buf = io.BytesIO()
    np.savez(buf, user_ids=emb.user_ids, user_vectors=emb.user_vectors, item_ids=emb.item_ids,
             item_vectors=emb.item_vectors)
    local_store.put_bytes(model_key("m1", "embeddings.npz"), buf.getvalue())
    loaded = load_embeddings(local_store, "m1")
    assert loaded.model_id == "m1" and loaded.dim == 5 and len(loaded.user_index) == 6
    bad = io.BytesIO()
    np.savez(bad, item_ids=emb.item_ids)
    local_store.put_bytes(model_key("m2", "embeddings.npz"), bad.getvalue())
    with pytest.raises(EmbeddingsError, match="lacks"):
        load_embeddings(local_store, "m2")

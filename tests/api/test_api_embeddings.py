"""Served embeddings: searchsorted lookups and mapped files against the previous dict-based
implementation (kept below as the reference), similar items, legacy ``embeddings.npz``, bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest

from recsys.families.vectors.served import EmbeddingsError, ModelEmbeddings
from recsys.serving.model_cache import load_served
from recsys.artifacts import model_key
from recsys.families.vectors.files import publish_arrays


class Reference:
    """The previous implementation: arrays in publish order, dict id indexes, a normalised item copy."""

    def __init__(self, user_ids, user_vectors, item_ids, item_vectors):
        self.user_vectors = np.asarray(user_vectors, dtype=np.float32)
        self.item_ids, self.item_vectors = np.asarray(item_ids), np.asarray(item_vectors, dtype=np.float32)
        emb = self.item_vectors[:, :-1]
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        self.item_unit = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)
        self.user_index = {int(u): i for i, u in enumerate(user_ids)}
        self.item_index = {int(p): i for i, p in enumerate(item_ids)}

    def user_vector(self, user_id):
        i = self.user_index.get(user_id)
        return None if i is None else self.user_vectors[i]

    def _top(self, scores, k, exclude):
        scores = scores.astype(np.float64, copy=True)
        for pid in exclude:
            if pid in self.item_index:
                scores[self.item_index[pid]] = -np.inf
        k = min(k, int(np.isfinite(scores).sum()))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.item_ids[i]), float(scores[i])) for i in top]

    def score_user(self, vector, k, exclude=()):
        return self._top(self.item_vectors @ np.asarray(vector, dtype=np.float32), k, exclude)

    def similar_items(self, product_id, k, exclude=()):
        i = self.item_index.get(product_id)
        return [] if i is None else self._top(self.item_unit @ self.item_unit[i], k, set(exclude) | {product_id})


def random_model(seed=0, users=300, items=500, dim=9):
    """Shuffled, widely spread ids (negative and near the int64 limits) and random vectors."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(-10**6, 10**6), users + items, replace=False)
    ids[:2] = [np.iinfo(np.int64).max - 1, np.iinfo(np.int64).min + 1]
    user_ids, item_ids = ids[:users], ids[users:]
    user_vectors = np.hstack([rng.normal(size=(users, dim - 1)), np.ones((users, 1))])
    item_vectors = rng.normal(size=(items, dim))
    return user_ids, user_vectors, item_ids, item_vectors


def absent_ids(present) -> list:
    present = set(int(x) for x in present)
    candidates = [min(present) - 1, max(present) + 1, 0, 7, -3, 2**63, -(2**63) - 1, 2**70, "12", 1.5, None]
    candidates += [int(x) + 1 for x in sorted(present)[:50]]
    return [c for c in candidates if c not in present]


def make(seed=0, users=6, items=40, dim=5) -> ModelEmbeddings:
    rng = np.random.default_rng(seed)
    user_vectors = np.hstack([rng.normal(size=(users, dim - 1)), np.ones((users, 1))])
    item_vectors = rng.normal(size=(items, dim))
    return ModelEmbeddings.from_arrays("m1", np.arange(1, users + 1), user_vectors,
                                       np.arange(100, 100 + items), item_vectors)


@pytest.fixture(params=["in_memory", "mapped_files"])
def pair(request, local_store, tmp_path):
    """(new implementation, reference) over the same random model, in memory or from published files."""
    arrays = random_model(seed=11)
    if request.param == "in_memory":
        emb = ModelEmbeddings.from_arrays("m1", *arrays)
    else:
        emb = load_served(local_store, "m1", tmp_path / "cache", publish_arrays(local_store, "m1", *arrays))
        assert isinstance(emb.item_vectors.base, np.memmap) and not emb.item_vectors.flags.writeable
    return emb, Reference(*arrays)


def test_lookups_of_present_and_absent_ids(pair):
    emb, ref = pair
    for uid in ref.user_index:
        np.testing.assert_array_equal(emb.user_vector(uid), ref.user_vector(uid))
    for pid in ref.item_index:
        assert emb.has_item(pid)
    for missing in absent_ids(ref.user_index):
        assert emb.user_vector(missing) is None
    for missing in absent_ids(ref.item_index):
        assert not emb.has_item(missing) and emb.similar_items(missing, 5) == []


def test_score_user_and_similar_items_equal_the_reference(pair):
    emb, ref = pair
    rng = np.random.default_rng(5)
    item_ids = list(ref.item_index)
    for uid in rng.choice(list(ref.user_index), 25, replace=False):
        exclude = {int(p) for p in rng.choice(item_ids, 20, replace=False)} | {123_456_789}
        new = emb.score_user(emb.user_vector(int(uid)), 50, exclude)
        old = ref.score_user(ref.user_vector(int(uid)), 50, exclude)
        assert [p for p, _ in new] == [p for p, _ in old] and not exclude & {p for p, _ in new}
        np.testing.assert_allclose([s for _, s in new], [s for _, s in old], rtol=1e-5, atol=1e-6)
    for pid in rng.choice(item_ids, 25, replace=False):
        exclude = {int(p) for p in rng.choice(item_ids, 10, replace=False)}
        new, old = emb.similar_items(int(pid), 30, exclude), ref.similar_items(int(pid), 30, exclude)
        assert [p for p, _ in new] == [p for p, _ in old] and int(pid) not in {p for p, _ in new}
        np.testing.assert_allclose([s for _, s in new], [s for _, s in old], rtol=1e-5, atol=1e-6)
    assert len(emb.score_user(emb.user_vector(int(next(iter(ref.user_index)))), 10**6)) == len(item_ids)


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


def test_an_item_without_embedding_is_similar_to_nothing():
    vectors = np.array([[0.0, 0.0, 0.5], [1.0, 0.0, 0.1], [1.0, 1.0, 0.2]])
    emb = ModelEmbeddings.from_arrays("m", [1], [[1.0, 1.0, 1.0]], [10, 20, 30], vectors)
    assert [s for _, s in emb.similar_items(10, 5)] == [0.0, 0.0]
    assert [p for p, _ in emb.similar_items(20, 5)] == [30, 10]
    assert [s for _, s in emb.similar_items(20, 5)] == pytest.approx([2 ** -0.5, 0.0])


def test_unknown_user_wrong_shapes_and_duplicated_ids():
    emb = make()
    assert emb.user_vector(12345) is None
    with pytest.raises(EmbeddingsError, match="shape"):
        emb.score_user(np.ones(3), 5)
    with pytest.raises(EmbeddingsError, match="item_ids"):
        ModelEmbeddings.from_arrays("m", [1], np.ones((1, 3)), [1, 2], np.ones((3, 3)))
    with pytest.raises(EmbeddingsError, match="strictly increasing"):
        ModelEmbeddings.from_arrays("m", [1, 1], np.ones((2, 3)), [1, 2], np.ones((2, 3)))
    empty = ModelEmbeddings.from_arrays("m", [], np.ones((0, 3)), [1, 2], np.ones((2, 3)))
    assert empty.user_vector(1) is None and empty.dim == 3


def _recorded(store, model_id: str) -> dict[str, str]:
    """The checksum an operator records for a legacy file (``models trust``)."""
    return {"embeddings.npz": store.sha256(model_key(model_id, "embeddings.npz"))}


def test_a_model_published_as_npz_still_loads_whole(local_store, tmp_path):
    """The previous version's ``embeddings.npz`` (publish order, not sorted): same answers, no cache folder."""
    arrays = random_model(seed=3, users=50, items=80)
    buf = io.BytesIO()
    np.savez_compressed(buf, **dict(zip(("user_ids", "user_vectors", "item_ids", "item_vectors"), arrays)))
    local_store.put_bytes(model_key("old", "embeddings.npz"), buf.getvalue())
    loaded = load_served(local_store, "old", tmp_path / "cache", _recorded(local_store, "old"))
    ref = Reference(*arrays)
    assert loaded.model_id == "old" and loaded.dim == 9 and not (tmp_path / "cache" / "old").exists()
    for uid in list(ref.user_index)[:10]:
        new, old = loaded.score_user(loaded.user_vector(uid), 10), ref.score_user(ref.user_vector(uid), 10)
        assert [p for p, _ in new] == [p for p, _ in old]
        np.testing.assert_allclose([s for _, s in new], [s for _, s in old], rtol=1e-6)
    pid = int(arrays[2][3])
    assert [p for p, _ in loaded.similar_items(pid, 10)] == [p for p, _ in ref.similar_items(pid, 10)]


def test_a_legacy_file_without_the_arrays_or_not_an_archive(local_store, tmp_path):
    bad = io.BytesIO()
    np.savez(bad, item_ids=np.arange(3))
    local_store.put_bytes(model_key("m2", "embeddings.npz"), bad.getvalue())
    with pytest.raises(EmbeddingsError, match="lacks"):
        load_served(local_store, "m2", tmp_path, _recorded(local_store, "m2"))
    local_store.put_bytes(model_key("m3", "embeddings.npz"), b"not a zip at all")
    with pytest.raises(EmbeddingsError, match="not a readable .npz"):
        load_served(local_store, "m3", tmp_path, _recorded(local_store, "m3"))
    with pytest.raises(EmbeddingsError, match="no published embeddings"):
        load_served(local_store, "m4", tmp_path, {})

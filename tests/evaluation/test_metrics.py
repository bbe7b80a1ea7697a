"""Each fast metric against a slow, obvious reference on random data, plus hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from recsys.evaluation import metrics as M

N_USERS, N_ITEMS, K = 60, 40, 10


# --- slow references ------------------------------------------------------------
def ref_precision(truth, pred, k):
    return np.mean([sum(i in set(t) for i in p[:k]) / k for t, p in zip(truth, pred)])


def ref_recall(truth, pred, k):
    return np.mean([sum(i in set(t) for i in p[:k]) / len(set(t)) for t, p in zip(truth, pred)])


def ref_ndcg(truth, pred, k):
    out = []
    for t, p in zip(truth, pred):
        rel = set(t)
        dcg = sum(1 / math.log2(j + 2) for j, i in enumerate(p[:k]) if i in rel)
        idcg = sum(1 / math.log2(j + 2) for j in range(min(len(rel), k)))
        out.append(dcg / idcg)
    return np.mean(out)


def ref_map(truth, pred, k):
    out = []
    for t, p in zip(truth, pred):
        rel, hits, total = set(t), 0, 0.0
        for j, i in enumerate(p[:k]):
            if i in rel:
                hits += 1
                total += hits / (j + 1)
        out.append(total / min(len(rel), k))
    return np.mean(out)


def ref_auc(truth, scores):
    out = []
    for t, row in zip(truth, scores):
        rel = set(t)
        pos = [row[i] for i in rel]
        neg = [row[i] for i in range(len(row)) if i not in rel and np.isfinite(row[i])]
        wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
        out.append(wins / (len(pos) * len(neg)))
    return np.mean(out)


def ref_coverage(pred, n_items, k):
    return len({i for p in pred for i in p[:k]}) / n_items


def ref_diversity(pred, cats, k):
    out = []
    for p in pred:
        top = list(p[:k])
        pairs = [(a, b) for a in range(k) for b in range(k) if a != b]
        out.append(sum(cats[top[a]] != cats[top[b]] for a, b in pairs) / len(pairs))
    return np.mean(out)


def ref_novelty(pred, pop, k):
    return np.mean([np.mean([-math.log2(pop[i]) for i in p[:k]]) for p in pred])


@pytest.fixture(params=[0, 1, 2])
def random_case(request):
    rng = np.random.default_rng(request.param)
    truth = [rng.choice(N_ITEMS, size=rng.integers(1, 8), replace=False) for _ in range(N_USERS)]
    truth[0] = np.array([3, 3, 5])  # duplicates count once
    scores = np.round(rng.random((N_USERS, N_ITEMS)), 1)  # rounding makes ties
    for u, t in enumerate(truth):
        candidates = np.setdiff1d(np.arange(N_ITEMS), t)
        scores[u, rng.choice(candidates, size=3, replace=False)] = -np.inf  # not candidates
    pred = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return truth, pred, scores


@pytest.mark.parametrize("k", [1, 3, K])
def test_topk_metrics_match_references(random_case, k):
    truth, pred, _ = random_case
    assert M.precision_at_k(truth, pred, k) == pytest.approx(ref_precision(truth, pred, k))
    assert M.recall_at_k(truth, pred, k) == pytest.approx(ref_recall(truth, pred, k))
    assert M.ndcg_at_k(truth, pred, k) == pytest.approx(ref_ndcg(truth, pred, k))
    assert M.map_at_k(truth, pred, k) == pytest.approx(ref_map(truth, pred, k))
    assert M.catalog_coverage(pred, N_ITEMS, k) == pytest.approx(ref_coverage(pred, N_ITEMS, k))


def test_auc_matches_pairwise_reference_and_sklearn(random_case):
    truth, _, scores = random_case
    assert M.auc(truth, scores) == pytest.approx(ref_auc(truth, scores))
    per_user = []
    for t, row in zip(truth, scores):
        ok = np.isfinite(row)
        label = np.isin(np.arange(N_ITEMS), t)
        per_user.append(roc_auc_score(label[ok], row[ok]))
    assert M.auc(truth, scores) == pytest.approx(np.mean(per_user))


def test_diversity_and_novelty_match_references(random_case):
    _, pred, _ = random_case
    rng = np.random.default_rng(9)
    cats = rng.choice(["a", "b", "c", "d"], size=N_ITEMS)
    pop = rng.uniform(0.01, 1.0, size=N_ITEMS)
    assert M.intra_list_diversity(pred, cats, K) == pytest.approx(ref_diversity(pred, cats, K))
    assert M.novelty(pred, pop, K) == pytest.approx(ref_novelty(pred, pop, K))


# --- hand-computed cases ---------------------------------------------------------
def test_hand_computed_single_user():
    truth = [[2, 7]]
    pred = np.array([[7, 1, 2, 4]])  # hits at ranks 1 and 3
    assert M.precision_at_k(truth, pred, 4) == pytest.approx(2 / 4)
    assert M.recall_at_k(truth, pred, 2) == pytest.approx(1 / 2)
    assert M.ndcg_at_k(truth, pred, 4) == pytest.approx((1 + 1 / 2) / (1 + 1 / math.log2(3)))
    assert M.map_at_k(truth, pred, 4) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert M.catalog_coverage(pred, 10, 4) == pytest.approx(0.4)


def test_perfect_and_worst_rankings():
    truth = [[0], [1, 2]]
    perfect = np.array([[0, 1, 2], [1, 2, 0]])
    assert M.ndcg_at_k(truth, perfect, 3) == pytest.approx(1.0)
    assert M.map_at_k(truth, perfect, 3) == pytest.approx(1.0)
    scores = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 5.0, 4.0, 1.0]])
    assert M.auc(truth, scores) == pytest.approx(1.0)
    assert M.auc(truth, -scores) == pytest.approx(0.0)
    assert M.auc([[0]], np.array([[1.0, 1.0, 1.0]])) == pytest.approx(0.5)  # all ties


def test_auc_ignores_non_candidates():
    scores = np.array([[0.5, 0.9, -np.inf, 0.1]])  # item 2 is excluded, not a loss
    assert M.auc([[0]], scores) == pytest.approx(0.5)


def test_diversity_and_novelty_by_hand():
    pred = np.array([[0, 1, 2]])
    assert M.intra_list_diversity(pred, np.array(["x", "x", "y"]), 3) == pytest.approx(4 / 6)
    assert M.novelty(pred, np.array([0.5, 0.25, 1.0]), 3) == pytest.approx((1 + 2 + 0) / 3)


# --- input validation --------------------------------------------------------------
@pytest.mark.parametrize(
    "truth, pred, k, match",
    [
        ([[1]], np.array([[1, 2]]), 0, "positive integer"),
        ([[1]], np.array([[1, 2]]), 3, "fewer than k"),
        ([[1]], np.array([1, 2]), 1, "2-D integer"),
        ([[1]], np.array([[1.0, 2.0]]), 1, "2-D integer"),
        ([[1], [2]], np.array([[1, 2]]), 1, "truth has 2 users"),
        ([[]], np.array([[1, 2]]), 1, "at least one relevant"),
        ([[1]], np.array([[1, 1]]), 2, "repeats"),
        ([[1]], np.array([[-1, 2]]), 2, "negative"),
    ],
)
def test_topk_input_errors(truth, pred, k, match):
    with pytest.raises(ValueError, match=match):
        M.precision_at_k(truth, pred, k)


def test_other_input_errors():
    with pytest.raises(ValueError, match="non-finite"):
        M.auc([[0]], np.array([[-np.inf, 1.0]]))
    with pytest.raises(ValueError, match="no non-relevant"):
        M.auc([[0, 1]], np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        M.auc([[5]], np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="beyond n_items"):
        M.catalog_coverage(np.array([[0, 5]]), 3, 2)
    with pytest.raises(ValueError, match="k >= 2"):
        M.intra_list_diversity(np.array([[0]]), np.array(["a"]), 1)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        M.novelty(np.array([[0, 1]]), np.array([0.0, 0.5]), 2)


def test_per_user_values_average_to_the_metrics():
    truth = [np.array([1, 2]), np.array([0]), np.array([3, 4, 5])]
    predictions = np.array([[2, 0, 1], [0, 1, 2], [5, 1, 2]])
    for name, mean in (("precision", M.precision_at_k), ("recall", M.recall_at_k), ("ndcg", M.ndcg_at_k),
                       ("map", M.map_at_k)):
        values = M.per_user(f"{name}@3", truth, predictions)
        assert values.shape == (3,) and values.mean() == pytest.approx(mean(truth, predictions, 3))
    assert M.per_user("recall@3", truth, predictions).tolist() == pytest.approx([1.0, 1.0, 1 / 3])
    with pytest.raises(ValueError, match="per-user"):
        M.per_user("auc", truth, predictions)

import dataclasses

import numpy as np
import pytest
import torch

from recsys.constants import COL_ITEM
from recsys.families.sequential.config import FIRST_ITEM
from recsys.families.sequential.data import build_vocab, make_training_data, user_sequences
from recsys.families.sequential.train import fit_sequential, train_model
from tests.families.sequential.seq_helpers import SMALL, probe_sequences, products, successor, successor_events


def top1_accuracy(fitted, sequences) -> float:
    """Share of ``sequences`` whose best-scored next product (torch, not the export) is the successor."""
    vocab, model = fitted.vocab, fitted.model
    with torch.no_grad():
        states = model(torch.from_numpy(np.stack([np.r_[np.zeros(SMALL.max_len - len(s), dtype=np.int64),
                                                        vocab.indices(s)] for s in sequences])))[:, -1]
        best = (states @ model.item_vectors().T).argmax(1).numpy()
    return float(np.mean([vocab.product_ids[b] == successor(s) for b, s in zip(best, sequences)]))


def successor_data(shuffle_targets: bool = False):
    sequences = user_sequences(successor_events(), distinct=True)
    vocab = build_vocab(products()[COL_ITEM].to_numpy(), products())
    data = make_training_data([vocab.indices(s) for s in sequences.values()], SMALL.max_len)
    if shuffle_targets:  # control: the same inputs with another window's targets
        data.targets = data.targets[np.random.default_rng(0).permutation(len(data.targets))]
        data.val_targets = np.random.default_rng(1).permutation(data.val_targets)
    return vocab, data


@pytest.mark.parametrize("kind", ["sasrec", "gru"])
def test_the_model_learns_which_product_comes_next(kind):
    fitted = fit_sequential(successor_events(), products(), dataclasses.replace(SMALL, kind=kind))
    assert top1_accuracy(fitted, probe_sequences()) >= 0.9
    assert fitted.summary()["best_val_ndcg@10"] > 0.9


def test_shuffled_targets_teach_nothing():
    vocab, data = successor_data(shuffle_targets=True)
    fitted = train_model(vocab, data, dataclasses.replace(SMALL, max_epochs=15))
    assert top1_accuracy(fitted, probe_sequences()) < 0.2  # chance is 1/40; the real pattern gives >= 0.9


def test_early_stopping_keeps_the_best_epoch_and_stops():
    vocab, data = successor_data(shuffle_targets=True)  # nothing to learn: validation stops improving early
    fitted = train_model(vocab, data, dataclasses.replace(SMALL, max_epochs=200, patience=2))
    assert fitted.stopped == "patience"
    assert len(fitted.history) == fitted.best_epoch + 2 < 200
    best = fitted.history[fitted.best_epoch - 1]
    assert all((h["val_ndcg"], -h["val_loss"]) <= (best["val_ndcg"], -best["val_loss"]) for h in fitted.history)


def test_the_time_budget_stops_training():
    vocab, data = successor_data()
    fitted = train_model(vocab, data, dataclasses.replace(SMALL, max_epochs=200, patience=200, time_budget_s=0.01))
    assert fitted.stopped == "time_budget" and len(fitted.history) == 1


def test_the_time_budget_is_wall_time_checked_before_every_batch(monkeypatch):
    """A clock that moves 1 s per reading: a 5 s budget cuts the first epoch after a few batches
    (an epoch-end check would have run all of them), and the cut epoch's model is still kept."""
    import recsys.families.sequential.train as train

    vocab, data = successor_data()
    config = dataclasses.replace(SMALL, batch_size=4, max_epochs=200, patience=200, time_budget_s=5)
    batches = -(-len(data.inputs) // config.batch_size)
    assert batches > 10
    ticks = iter(range(10**6))
    monkeypatch.setattr(train.time, "perf_counter", lambda: float(next(ticks)))
    ran = []
    real_step = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: (ran.append(1), real_step(self, *a, **k))[1])
    fitted = train_model(vocab, data, config)
    assert fitted.stopped == "time_budget" and len(fitted.history) == 1 and fitted.history[0]["partial"]
    assert 1 <= len(ran) <= 5 < batches
    assert fitted.best_epoch == 1


def test_training_is_deterministic_for_a_seed():
    vocab, data = successor_data()
    config = dataclasses.replace(SMALL, max_epochs=3)
    first, second = (train_model(vocab, data, config).model.item_vectors().detach() for _ in range(2))
    assert torch.equal(first, second)
    other = train_model(vocab, data, dataclasses.replace(config, seed=8)).model.item_vectors().detach()
    assert not torch.equal(first, other)


def test_attributes_give_an_unseen_product_a_vector():
    """Users stay in one category; a product never seen in training, known only by its category and
    price band, scores above the products of other categories after a sequence of its category."""
    catalogue = products()
    rng = np.random.default_rng(5)
    rows = []
    for user in range(400):
        cat = user % 4
        for step, item in enumerate(rng.choice(10, size=6, replace=False)):
            rows.append((user + 1, 1000 + 10 * cat + int(item), "PURCHASE", 1_700_000_000_000 + step))
    import pandas as pd
    events = pd.DataFrame(rows, columns=["user_id", COL_ITEM, "event_type", "timestamp"])
    held_out = {1000, 1020}  # never bought: unseen, but in the catalogue (c0 and c2)
    events = events[~events[COL_ITEM].isin(held_out)]
    fitted = fit_sequential(events, catalogue, dataclasses.replace(SMALL, max_epochs=30))
    model, vocab = fitted.model, fitted.vocab
    assert 1000 not in vocab.product_ids
    with torch.no_grad():
        cats = torch.tensor([vocab.categories.index("c0") + 1, vocab.categories.index("c2") + 1])
        bands = torch.tensor([int(vocab.item_bands[vocab.indices([1001])[0] - FIRST_ITEM]),
                              int(vocab.item_bands[vocab.indices([1021])[0] - FIRST_ITEM])])
        unseen = model.embed(torch.ones(2, dtype=torch.long), cats, bands)  # UNKNOWN id + attributes
        state = model(torch.from_numpy(vocab.indices([1001, 1002, 1003]))[None])[0, -1]
        known = model.item_vectors() @ state
        c0_new, c2_new = (unseen @ state).tolist()
    other = known[torch.from_numpy(vocab.indices(range(1021, 1040)) - FIRST_ITEM)]
    assert c0_new > c2_new and c0_new > float(other.max())

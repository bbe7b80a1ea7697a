import numpy as np
import pandas as pd
import pytest

from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_TIMESTAMP, COL_USER, IMPRESSION, PURCHASE, RETURN, VIEW
from recsys.families.hybrid.features import price_band
from recsys.families.sequential.attributes import category_index, price_band_index
from recsys.families.sequential.config import FIRST_ITEM, PAD, UNKNOWN, SequentialConfig
from recsys.families.sequential.data import build_vocab, make_training_data, user_sequences
from tests.families.sequential.seq_helpers import products


def events(rows):
    return pd.DataFrame(rows, columns=[COL_USER, COL_ITEM, COL_EVENT_TYPE, COL_TIMESTAMP])


def test_sequences_are_in_time_order_with_positive_events_only():
    log = events([(1, 12, PURCHASE, 30), (1, 11, VIEW, 10), (1, 13, RETURN, 20), (1, 14, IMPRESSION, 25),
                  (2, 20, VIEW, 5), (1, 11, PURCHASE, 40), (None, 30, VIEW, 1)])
    assert {u: s.tolist() for u, s in user_sequences(log, distinct=False).items()} == {1: [11, 12, 11], 2: [20]}
    assert user_sequences(log, distinct=True)[1].tolist() == [11, 12]  # the first event on a product only


def test_equal_timestamps_keep_the_order_of_the_log():
    log = events([(1, 5, PURCHASE, 10), (1, 3, PURCHASE, 10), (1, 4, PURCHASE, 10)])
    assert user_sequences(log)[1].tolist() == [5, 3, 4]


def test_windows_predict_the_next_product_and_the_newest_one_validates():
    seq = np.arange(FIRST_ITEM, FIRST_ITEM + 25)
    data = make_training_data([seq, np.array([7, 8])], max_len=10)
    assert data.val_targets.tolist() == [seq[-1]]  # the 2-product user is too short to give one away
    assert data.val_inputs[0].tolist() == seq[-11:-1].tolist()
    train = seq[:-1]
    for x, y in zip(data.inputs, data.targets):
        valid = x != PAD
        assert (y[valid] != PAD).all()
        # every input position is followed, in the user's sequence, by its target
        for a, b in zip(x[valid], y[valid]):
            assert b == a + 1
    covered = set(data.targets[data.targets != PAD].tolist())
    assert covered == set(train[1:].tolist()) | {8}  # every next product of the training side, once
    assert int((data.targets != PAD).sum()) == (len(train) - 1) + 1  # no target twice


def test_too_short_sequences_are_a_clear_error():
    with pytest.raises(ValueError, match="nothing to train on"):
        make_training_data([np.array([5])], max_len=4)


def test_vocabulary_indices_and_attributes():
    vocab = build_vocab(np.array([1003, 1001, 1003, 1039]), products())
    assert vocab.product_ids.tolist() == [1001, 1003, 1039]
    assert vocab.indices([1003, 5, 1001]).tolist() == [FIRST_ITEM + 1, UNKNOWN, FIRST_ITEM]
    assert vocab.categories == ["c0", "c3"]
    assert vocab.item_categories.tolist() == [1, 1, 2]
    cats, bands = vocab.attribute_table()
    assert cats[:FIRST_ITEM].tolist() == [0, 0] and bands[FIRST_ITEM:].tolist() == vocab.item_bands.tolist()


def test_price_bands_are_the_hybrids_log2_bands():
    prices = pd.Series([0.4, 1.0, 1.99, 2.0, 3.5, 100.0, 5000.0])
    reference = price_band(prices).str.removeprefix("price:").astype(int).to_numpy()
    assert price_band_index(prices.to_numpy()).tolist() == (reference + 1).tolist()
    assert price_band_index([np.nan, -3.0, 0.0]).tolist() == [0, 0, 0]
    assert price_band_index([1e12]).max() == 16  # the last band takes every larger price
    assert category_index(["b", None, "zz", "a"], ["a", "b"]).tolist() == [2, 0, 0, 1]


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="kind"):
        SequentialConfig(kind="lstm")
    with pytest.raises(ValueError, match="multiple of heads"):
        SequentialConfig(dim=10, heads=3)
    with pytest.raises(ValueError, match="max_len"):
        SequentialConfig(max_len=0)

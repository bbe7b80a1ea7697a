"""The ``sequential`` row of ``python -m recsys evaluate``: the session model of ``recsys.families.sequential``.

Trained on the split's training events (the same as every other model), exported to ONNX
and scored through the serving path (``recsys.families.sequential.scoring``): each evaluated user's
product sequence up to the cut-off is the input, and every candidate product is scored
(products first seen in the test, for the new-items slice, by their attributes alone).
``ModelUnavailableError`` when torch (requirements-train.txt) is not installed.
"""

from __future__ import annotations

import dataclasses
import tempfile

import numpy as np
import pandas as pd

from recsys.constants import COL_ITEM, COL_USER
from recsys.evaluation.baselines import ModelUnavailableError
from recsys.evaluation.protocol import EvalSplit
from recsys.data.frames import require_columns


class SequentialEvalModel:
    """``score(users_df, products_df)`` of the exported sequential model, from each user's sequence."""

    def __init__(self, runtime, sequences: dict[int, np.ndarray], summary: dict):
        self.runtime, self.sequences, self.training_summary = runtime, sequences, summary

    def score(self, users_df: pd.DataFrame, products_df: pd.DataFrame) -> np.ndarray:
        from recsys.families.sequential.scoring import score_products

        require_columns(users_df, (COL_USER,), "users")
        users = users_df[COL_USER].to_numpy()
        known = np.array([int(u) in self.sequences for u in users], dtype=bool)
        out = np.zeros((len(users), len(products_df)), dtype=np.float32)  # a user without a sequence: no signal
        if known.any():
            sequences = [self.sequences[int(u)] for u in users[known]]
            out[known] = score_products(self.runtime, sequences, products_df[COL_ITEM].to_numpy())
        return out


def sequential_config(seed: int = 42, threads: int = 0, **overrides):
    """The ``SequentialConfig`` a fit uses: its defaults with ``seed``, ``threads`` (0: the default) and
    ``overrides`` (any other field)."""
    from recsys.families.sequential.config import SequentialConfig

    return dataclasses.replace(SequentialConfig(), **{"seed": seed, **({"threads": threads} if threads else {}),
                                                      **overrides})


def fit_sequential_model(split: EvalSplit, seed: int = 42, threads: int = 0, **overrides) -> SequentialEvalModel:
    """Train on ``split.train_events`` with ``sequential_config(seed, threads, **overrides)``, export, load
    the ONNX runtime with every product of the split."""
    from recsys.families.sequential.store import training_unavailable

    why = training_unavailable()
    if why:
        raise ModelUnavailableError(why)
    from recsys.families.sequential.data import user_sequences
    from recsys.families.sequential.export import export_model
    from recsys.families.sequential.scoring import add_products, load_runtime
    from recsys.families.sequential.train import fit_sequential

    config = sequential_config(seed, threads, **overrides)
    fitted = fit_sequential(split.train_events, split.products, config)
    with tempfile.TemporaryDirectory(prefix="sequential-eval-") as tmp:
        runtime = load_runtime(export_model(fitted, f"{tmp}/model"), mmap=False)
    products = split.products
    new = products[~products[COL_ITEM].isin(fitted.vocab.product_ids)]
    if len(new):
        runtime = add_products(runtime, new[COL_ITEM].to_numpy(), new["category"].tolist(), new["price"].tolist())
    return SequentialEvalModel(runtime, user_sequences(split.train_events, config.distinct), fitted.summary())

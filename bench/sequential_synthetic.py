"""A synthetic sequential model of the production shape, for the latency benchmarks (``bench_sequential``).

SASRec with the default ``SequentialConfig`` (``max_len`` 50, 64 dims, 2 blocks) over a catalogue,
untrained: latency does not depend on the weights' values, only the item vectors are spread as
training spreads them (scores with a real spread, not ties). Exported with
``recsys.families.sequential.export`` exactly as training exports a model, so it loads, verifies and scores
like a trained one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd


def synthetic_catalogue(products: int, seed: int = 0) -> pd.DataFrame:
    """Products ``1..products`` with one of 50 categories and a log-normal price."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"product_id": np.arange(1, products + 1),
                         "category": [f"c{i}" for i in rng.integers(50, size=products)],
                         "price": rng.lognormal(2.0, 1.0, size=products)})


def export_synthetic(catalogue: pd.DataFrame, folder: str | Path, seed: int = 0) -> Path:
    """The exported files of an untrained model over ``catalogue`` (``product_id``, ``category``, ``price``)."""
    import torch

    from recsys.families.sequential.config import SequentialConfig
    from recsys.families.sequential.data import build_vocab
    from recsys.families.sequential.export import export_model
    from recsys.families.sequential.train import FittedSequential, new_model

    config = dataclasses.replace(SequentialConfig(), seed=seed)
    torch.manual_seed(seed)
    vocab = build_vocab(catalogue["product_id"].to_numpy(), catalogue)
    model = new_model(vocab, config).eval()
    with torch.no_grad():  # spread the item vectors as training does (scores with a real spread, not ties)
        model.embed.ids.weight.normal_(0.0, 0.3)
    return export_model(FittedSequential(model, vocab, config), folder)


def synthetic_runtime(products: int, folder: str, seed: int = 0):
    """The runtime of a synthetic model over ``synthetic_catalogue(products)`` (one thread, item matrix mapped)."""
    from recsys.families.sequential.scoring import load_runtime

    export_synthetic(synthetic_catalogue(products, seed), folder, seed)
    return load_runtime(folder, threads=1, mmap=True)

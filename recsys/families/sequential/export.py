"""Write a trained sequential model as files the API can serve without torch.

- ``encoder.onnx``: (items, categories, bands), each (batch x max_len) int64, left-padded
  -> ``state`` (batch x dim), the encoder's last state (torch.onnx.export, dynamic batch).
- ``item_vectors.npy``: the tied output embeddings; a product's score is ``item_vectors @ state``.
  Scoring does that product and the top-k in numpy (over a memory-mapped matrix), not in ONNX.
- ``product_ids.npy``, ``item_categories.npy``, ``item_bands.npy``: the vocabulary and its attributes.
- ``category_vectors.npy``, ``band_vectors.npy``: attribute embeddings, so the scoring side can
  give a product added after training a vector (its attributes' sum).
- ``config.json``: the ``SequentialConfig``, category names, sizes and the training summary.
No pickle anywhere. The files are written to a temporary folder that is renamed to ``folder``
at the end, so a reader never sees half a model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from recsys.families.sequential import config as C
from recsys.families.sequential.train import FittedSequential

INPUT_NAMES = ("items", "categories", "bands")
OUTPUT_NAME = "state"


class LastState(nn.Module):
    """The encoder's state at the last position (where a left-padded sequence ends)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, items: torch.Tensor, categories: torch.Tensor, bands: torch.Tensor) -> torch.Tensor:
        return self.model.encode(items, categories, bands)[:, -1]


def _attribute_vectors(fitted: FittedSequential) -> tuple[np.ndarray, np.ndarray]:
    embed, dim = fitted.model.embed, fitted.config.dim
    if not fitted.config.attributes:
        return np.zeros((len(fitted.vocab.categories) + 1, dim), np.float32), np.zeros((C.N_PRICE_BANDS + 1, dim),
                                                                                          np.float32)
    return embed.categories.weight.detach().numpy().copy(), embed.bands.weight.detach().numpy().copy()


def export_onnx(model: nn.Module, path: Path, max_len: int) -> None:
    example = tuple(torch.zeros(2, max_len, dtype=torch.long) for _ in INPUT_NAMES)
    batch = torch.export.Dim("batch", min=1, max=65536)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(LastState(model).eval(), example, str(path), input_names=list(INPUT_NAMES),
                          output_names=[OUTPUT_NAME], dynamo=True, verbose=False, external_data=False,
                          dynamic_shapes={name: {0: batch} for name in INPUT_NAMES})


def export_model(fitted: FittedSequential, folder: str | Path) -> Path:
    """Write every artifact of ``fitted`` to ``folder`` (replaced if it exists); returns it."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model, vocab = fitted.model.eval(), fitted.vocab
        export_onnx(model, tmp / C.ENCODER_FILE, fitted.config.max_len)
        with torch.no_grad():
            vectors = model.item_vectors().numpy().astype(np.float32)
        categories, bands = _attribute_vectors(fitted)
        arrays = {C.PRODUCT_IDS_FILE: vocab.product_ids.astype(np.int64), C.ITEM_VECTORS_FILE: vectors,
                  C.ITEM_CATEGORIES_FILE: vocab.item_categories, C.ITEM_BANDS_FILE: vocab.item_bands,
                  C.CATEGORY_VECTORS_FILE: categories.astype(np.float32), C.BAND_VECTORS_FILE: bands.astype(np.float32)}
        for name, array in arrays.items():
            np.save(tmp / name, array, allow_pickle=False)
        meta = {"format_version": C.FORMAT_VERSION, "config": fitted.config.as_dict(),
                "categories": vocab.categories, "products": len(vocab), "dim": fitted.config.dim,
                "inputs": list(INPUT_NAMES), "output": OUTPUT_NAME, "training": fitted.summary()}
        (tmp / C.CONFIG_FILE).write_text(json.dumps(meta, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder

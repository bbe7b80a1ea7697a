"""The torch modules: item embeddings (id + category + price band) and a causal encoder over them.

``SequentialModel.encode(items, categories, bands)`` -> (batch x length x dim) states; the state
at position t summarises products 0..t and scores the next product by its dot product with
each product's embedding (``item_vectors``: the same embeddings as the input, tied).

- ``sasrec``: learned positions, pre-norm blocks of causal self-attention (written with plain
  matrix products, so the ONNX export needs no fused kernel) and a feed-forward layer.
- ``gru``: a GRU over the embeddings.

Index ``PAD`` (left padding) and ``UNKNOWN`` (a product the vocabulary does not know) have a zero
id embedding: an unknown product is represented by its attributes alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from recsys.families.sequential.config import FIRST_ITEM, N_PRICE_BANDS, PAD, UNKNOWN, SequentialConfig

INIT_STD = 0.02
MASKED = -1e9  # additive attention bias of a forbidden position (finite: exported graphs stay NaN-free)


class ItemEmbedding(nn.Module):
    def __init__(self, n_items: int, n_categories: int, dim: int, attributes: bool):
        super().__init__()
        self.ids = nn.Embedding(n_items, dim, padding_idx=PAD)
        self.attributes = attributes
        if attributes:
            self.categories = nn.Embedding(n_categories + 1, dim, padding_idx=0)
            self.bands = nn.Embedding(N_PRICE_BANDS + 1, dim, padding_idx=0)
        for table in self.children():
            nn.init.normal_(table.weight, std=INIT_STD)
            with torch.no_grad():
                table.weight[0].zero_()

    def forward(self, items: torch.Tensor, categories: torch.Tensor, bands: torch.Tensor) -> torch.Tensor:
        out = self.ids(torch.where(items == UNKNOWN, torch.zeros_like(items), items))
        if self.attributes:
            out = out + self.categories(categories) + self.bands(bands)
        return out


class CausalBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads) + bias, dim=-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.ff(self.norm2(x)))


class SequentialModel(nn.Module):
    """Item embeddings, an encoder, and each vocabulary product's category and band (buffers)."""

    def __init__(self, config: SequentialConfig, item_categories: torch.Tensor, item_bands: torch.Tensor,
                 n_categories: int):
        super().__init__()
        self.config = config
        n_items = len(item_categories)
        self.register_buffer("item_categories", item_categories.long())
        self.register_buffer("item_bands", item_bands.long())
        self.embed = ItemEmbedding(n_items, n_categories, config.dim, config.attributes)
        self.drop = nn.Dropout(config.dropout)
        self.norm = nn.LayerNorm(config.dim)
        if config.kind == "sasrec":
            self.positions = nn.Embedding(config.max_len, config.dim)
            nn.init.normal_(self.positions.weight, std=INIT_STD)
            self.blocks = nn.ModuleList(CausalBlock(config.dim, config.heads, config.dropout)
                                        for _ in range(config.layers))
        else:
            self.gru = nn.GRU(config.dim, config.dim, num_layers=config.layers, batch_first=True,
                              dropout=config.dropout if config.layers > 1 else 0.0)

    def encode(self, items: torch.Tensor, categories: torch.Tensor, bands: torch.Tensor) -> torch.Tensor:
        x = self.embed(items, categories, bands)
        if self.config.kind == "gru":
            return self.norm(self.gru(self.drop(x))[0])
        n = items.shape[1]
        x = self.drop(x * math.sqrt(self.config.dim) + self.positions.weight[:n])
        valid = items != PAD
        eye = torch.eye(n, dtype=torch.bool, device=items.device)
        allowed = (torch.tril(torch.ones(n, n, dtype=torch.bool, device=items.device)) & valid[:, None, :]) | eye
        bias = torch.where(allowed, 0.0, MASKED).to(x.dtype)[:, None]
        for block in self.blocks:
            x = block(x, bias)
        return self.norm(x) * valid[..., None].to(x.dtype)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """States of sequences of vocabulary indices (attributes looked up from the vocabulary)."""
        return self.encode(items, self.item_categories[items], self.item_bands[items])

    def item_vectors(self) -> torch.Tensor:
        """The output embedding of every vocabulary product (row r = index FIRST_ITEM + r)."""
        idx = torch.arange(FIRST_ITEM, len(self.item_categories), device=self.item_categories.device)
        return self.embed(idx, self.item_categories[idx], self.item_bands[idx])

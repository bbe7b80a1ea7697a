"""A sequential model as one API node serves it: the ONNX runtime over the node's verified files.

It scores in real time (``Capabilities.real_time``): the API compares the key of the session's sequence
(``sequence_key``) with the one a cached list records and, when they differ, re-scores the sequence
(``score_sequence``: about 3 ms for 100K products on one BLAS thread). Products added to the catalogue after
training get their attributes' vectors when the model is opened. There are no stored user vectors: a user
without a sequence the model knows is served from the cached lists or the fallback tiers. Similar items are
the cosine of the item vectors.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.constants import COL_ITEM
from recsys.data.sequences import sequence_key
from recsys.families.vectors.served import top_items


@dataclass(frozen=True)
class SequentialServedModel:
    model_id: str
    runtime: object  # recsys.families.sequential.scoring.SequentialRuntime

    @classmethod
    def open(cls, model_id: str, folder: Path, products: pd.DataFrame | None = None) -> SequentialServedModel:
        from recsys.families.sequential.scoring import add_products, load_runtime

        runtime = load_runtime(folder)
        if products is not None and len(products):
            new = products[~products[COL_ITEM].isin(list(runtime.rows))].drop_duplicates(COL_ITEM)
            if len(new):
                runtime = add_products(runtime, new[COL_ITEM].astype(int).tolist(), new["category"].tolist(),
                                       [None if pd.isna(p) else float(p) for p in new["price"]])
        return cls(model_id, runtime)

    @property
    def dim(self) -> int:
        return int(self.runtime.item_vectors.shape[1])

    def has_item(self, product_id: int) -> bool:
        return int(product_id) in self.runtime.rows

    def user_vector(self, user_id: int) -> None:
        return None  # scored from the session's sequence, never from a stored user vector

    def score_user(self, vector: np.ndarray, k: int, exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        return []

    def similar_items(self, product_id: int, k: int, exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        row = self.runtime.rows.get(int(product_id))
        if row is None:
            return []
        vectors = np.asarray(self.runtime.item_vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1)
        denom = norms * norms[row]
        dots = vectors @ vectors[row]
        cosine = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
        return top_items(self.runtime.product_ids, cosine, k, set(exclude) | {int(product_id)})

    def sequence_key(self, sequence: Sequence[int]) -> str:
        """The key of a session's sequence (newest first) that a list made for it records."""
        return sequence_key(sequence)

    def score_sequence(self, sequence: Sequence[int], k: int,
                       exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        """The ``k`` best next products after ``sequence`` (newest first; products the model does not know
        are skipped), best first; empty when it knows none of them."""
        from recsys.families.sequential.scoring import score_next

        known = [int(p) for p in reversed(list(sequence)) if int(p) in self.runtime.rows]  # oldest first
        if not known:
            return []
        ids, scores = score_next(self.runtime, known, k=k, exclude=exclude)
        return [(int(p), float(s)) for p, s in zip(ids, scores)]

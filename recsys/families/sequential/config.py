"""Every knob of the sequential model with its default, and the names of its artifact files."""

from __future__ import annotations

from dataclasses import asdict, dataclass

KINDS = ("sasrec", "gru")
PAD, UNKNOWN = 0, 1  # reserved item indices: padding, and a product the vocabulary does not know
FIRST_ITEM = 2  # vocabulary index of the first real product
N_PRICE_BANDS = 16  # log2 price bands 0..14 and ">= 2**15"; index 0 of the band table = no price

# artifact files (recsys.families.sequential.export writes them, recsys.families.sequential.scoring reads them)
ENCODER_FILE = "encoder.onnx"
CONFIG_FILE = "config.json"
PRODUCT_IDS_FILE = "product_ids.npy"  # int64, vocabulary order (index FIRST_ITEM + row)
ITEM_VECTORS_FILE = "item_vectors.npy"  # float32 (products x dim): the tied output embeddings
ITEM_CATEGORIES_FILE = "item_categories.npy"  # int64 category index per product (0 = unknown)
ITEM_BANDS_FILE = "item_bands.npy"  # int64 price band index per product (0 = no price)
CATEGORY_VECTORS_FILE = "category_vectors.npy"  # float32 (categories + 1) x dim, row 0 = zeros
BAND_VECTORS_FILE = "band_vectors.npy"  # float32 (N_PRICE_BANDS + 1) x dim, row 0 = zeros
FORMAT_VERSION = 1
# upload order: config.json last, so a folder with it is complete
SEQUENTIAL_FILES = (ENCODER_FILE, PRODUCT_IDS_FILE, ITEM_VECTORS_FILE, ITEM_CATEGORIES_FILE, ITEM_BANDS_FILE,
                    CATEGORY_VECTORS_FILE, BAND_VECTORS_FILE, CONFIG_FILE)


@dataclass(frozen=True)
class SequentialConfig:
    """What the model is and how it is trained.

    ``max_len``: products of a sequence the model reads (the most recent ones).
    ``distinct``: keep only each user's first interaction with a product, so the model learns
    "the next product new to this user" (what the evaluation counts: products bought before
    are excluded there); False keeps repeats.
    ``attributes``: add category and price band embeddings to the id embedding, so a product
    unseen in training still has a vector (its attributes').
    ``max_epochs`` / ``patience``: early stopping on the validation NDCG@10 (each user's newest product).
    ``time_budget_s``: wall-clock seconds of training, checked before every batch: the epoch that
    crosses it is cut there, validated, and the best epoch so far is kept (at least one batch always
    runs). It is wall time, not CPU time, because it exists for the DAG's deadline and the operator's
    wait: on a busy machine a CPU budget let one epoch of a 120 s budget run 542 s. The price: a
    run cut by the budget depends on the machine's load (the epochs' own arithmetic stays seeded).
    """

    kind: str = "sasrec"
    max_len: int = 50
    dim: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.2
    distinct: bool = True
    attributes: bool = True
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    max_epochs: int = 200
    patience: int = 5
    min_sequence: int = 2  # users with fewer products give no training pair
    time_budget_s: float = 600.0
    threads: int = 2
    seed: int = 42

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        positive = ("max_len", "dim", "layers", "heads", "batch_size", "max_epochs", "patience", "threads")
        bad = [name for name in positive if getattr(self, name) < 1]
        if bad:
            raise ValueError(f"{bad} must be >= 1")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be a multiple of heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0 or self.learning_rate <= 0 or self.time_budget_s <= 0:
            raise ValueError("dropout must be in [0, 1), learning_rate and time_budget_s > 0")
        if self.min_sequence < 2:
            raise ValueError(f"min_sequence must be >= 2 (an input and a target), got {self.min_sequence}")

    def as_dict(self) -> dict:
        return asdict(self)

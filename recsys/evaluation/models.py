"""Every compared model by name, fitted on the training side of an ``EvalSplit``.

- ``random``, ``popularity``: ``recsys.model.baselines``.
- ``trending``, ``item-knn``, ``als``: ``recsys.evaluation.baselines``.
- ``lightfm-cf``: plain LightFM on ids only (no user or item attributes) with the production
  parameters (``BaselineConfig.lightfm``; the hybrid's when unset): tuning the hybrid does not
  change this baseline.
- ``hybrid``: the production model: ``recsys.model.train.fit_hybrid`` with the production
  features (``FeatureSet``) and the production re-ranking (``recsys.evaluation.reranking``).

Every model is fitted on the same training interactions, those of the protocol.

A feature set keeps some attributes: the others are blanked before fitting, so
LightFM never sees them (a blanked attribute yields no feature in ``recsys.model.features``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

import numpy as np

from recsys.constants import COL_ITEM, COL_TIMESTAMP, COL_USER
from recsys.evaluation.baselines import ALSModel, ItemKNNModel, TrendingModel
from recsys.evaluation.protocol import EvalSplit
from recsys.evaluation.reranking import ServingReranker, serving_rules
from recsys.model.baselines import PopularityModel, RandomModel
from recsys.model.evaluate import Split
from recsys.model.features import ITEM_COLUMNS, USER_COLUMNS
from recsys.model.train import TrainParams, fit_hybrid
from recsys.settings import get_settings

MODEL_NAMES = ("random", "popularity", "trending", "item-knn", "als", "lightfm-cf", "hybrid")
USER_FEATURES = ("country", "language", "device_type", "segment")
ITEM_FEATURES = ("category", "price", "name")
RERANK_FIELDS = ("max_per_category", "freshness_weight", "new_days", "trending_weight")


@dataclass(frozen=True)
class FeatureSet:
    user: tuple[str, ...] = USER_FEATURES
    item: tuple[str, ...] = ITEM_FEATURES

    def __post_init__(self):
        bad = sorted(set(self.user) - set(USER_FEATURES)) + sorted(set(self.item) - set(ITEM_FEATURES))
        if bad:
            raise ValueError(f"unknown feature(s) {bad}; user: {USER_FEATURES}, item: {ITEM_FEATURES}")

    @property
    def label(self) -> str:
        return f"user[{','.join(self.user) or 'ids'}] item[{','.join(self.item) or 'ids'}]"


@dataclass(frozen=True)
class HybridConfig:
    """What the hybrid is trained with, and the tunable knobs of its re-ranking
    (``max_per_category=None`` switches the diversity rule off, ``freshness_weight=0`` the freshness boost)."""

    params: TrainParams = field(default_factory=TrainParams)
    features: FeatureSet = field(default_factory=FeatureSet)
    max_per_category: int | None = 3
    freshness_weight: float = 0.1
    new_days: int = 14
    trending_weight: float = 0.0  # proposed rule (recsys.evaluation.reranking.boost_trending); 0 = production

    @classmethod
    def from_settings(cls, settings=None, **overrides) -> HybridConfig:
        s = settings or get_settings()
        return cls(params=TrainParams.from_settings(s, **overrides), max_per_category=s.max_per_category,
                   freshness_weight=s.rerank_freshness_weight, new_days=s.new_product_days)

    @classmethod
    def from_dict(cls, data: dict, settings=None) -> HybridConfig:
        """From ``as_dict`` output (a tuned configuration); missing keys keep the production values."""
        base = cls.from_settings(settings)
        unknown = set(data) - {"params", "user_features", "item_features", *RERANK_FIELDS}
        if unknown:
            raise ValueError(f"unknown hybrid configuration key(s) {sorted(unknown)}")
        given = data.get("params", {})
        bad = set(given) - {f.name for f in dataclasses.fields(TrainParams)}
        if bad:
            raise ValueError(f"unknown training parameter(s) {sorted(bad)}")
        params = dataclasses.replace(base.params, **given)
        features = FeatureSet(tuple(data.get("user_features", base.features.user)),
                              tuple(data.get("item_features", base.features.item)))
        return cls(params, features, **{f: data.get(f, getattr(base, f)) for f in RERANK_FIELDS})

    def as_dict(self) -> dict:
        """JSON-able; without ``window_days`` (the protocol's window applies) and ``threads`` (a run option)."""
        params = {k: v for k, v in asdict(self.params).items() if k not in ("window_days", "threads")}
        return {"params": params, "user_features": list(self.features.user),
                "item_features": list(self.features.item), **{f: getattr(self, f) for f in RERANK_FIELDS}}


@dataclass(frozen=True)
class BaselineConfig:
    trending_days: int = 7
    knn_neighbours: int = 100
    lightfm: TrainParams | None = None  # plain LightFM's parameters (None: the hybrid's)
    als: dict = field(default_factory=lambda: {"factors": 64, "regularization": 0.05, "iterations": 15,
                                               "alpha": 10.0})


def fit_lightfm(split: EvalSplit, params: TrainParams, features: FeatureSet):
    """``fit_hybrid`` on the split's training interactions with only ``features`` kept.

    Every model trains on the same interactions (the protocol's), so ``params.window_days``
    is not applied here: the protocol's ``train_days`` is the one window of a run."""
    users = split.users[list(USER_COLUMNS)].copy()
    for col in set(USER_COLUMNS[1:]) - set(features.user):
        users[col] = None
    products = split.products[list(ITEM_COLUMNS)].copy()
    for col in set(ITEM_COLUMNS[1:]) - set(features.item):
        products[col] = np.nan if col == "price" else None
    frame = split.frame if "segment" in features.user else split.frame[[COL_USER, COL_ITEM, "weight"]]
    return fit_hybrid(frame, users, products, params, info={"features": features.label})


def hybrid_reranker(split: EvalSplit, part: Split, config: HybridConfig) -> ServingReranker:
    """The production re-ranking of ``config`` for the users and products of ``part`` of ``split``."""
    events = split.train_events
    now = split.cutoff_ms if split.cutoff_ms is not None else int(events[COL_TIMESTAMP].max()) + 1
    rules = serving_rules(config.max_per_category, config.freshness_weight, config.new_days)
    return ServingReranker(part.products, events, now, rules, part.users[COL_USER].to_numpy(),
                           config.trending_weight, get_settings().trending_days)


def build_model(name: str, split: EvalSplit, hybrid: HybridConfig, baselines: BaselineConfig = BaselineConfig()):
    """The fitted model called ``name``; raises ``ModelUnavailableError`` when it cannot run here."""
    seed = hybrid.params.seed
    if name == "random":
        return RandomModel(seed)
    if name == "popularity":
        return PopularityModel.fit(split.frame)
    if name == "trending":
        return TrendingModel.fit(split.train_events, split.frame, baselines.trending_days, now_ms=split.cutoff_ms)
    if name == "item-knn":
        return ItemKNNModel.fit(split.frame, baselines.knn_neighbours)
    if name == "als":
        return ALSModel.fit(split.frame, seed=seed, threads=hybrid.params.threads, **baselines.als)
    if name == "lightfm-cf":
        return fit_lightfm(split, baselines.lightfm or hybrid.params, FeatureSet((), ()))
    if name == "hybrid":
        return fit_lightfm(split, hybrid.params, hybrid.features)
    raise ValueError(f"unknown model {name!r}; known: {list(MODEL_NAMES)}")

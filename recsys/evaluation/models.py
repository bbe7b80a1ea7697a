"""Every compared model by name, fitted on the training side of an ``EvalSplit``.

- ``random``, ``popularity``: ``recsys.evaluation.popularity``.
- ``trending``, ``item-knn``, ``als``: ``recsys.evaluation.baselines``.
- ``lightfm-cf``: plain LightFM WARP on ids only (no user or item attributes), ``PLAIN_LIGHTFM``
  (the pipeline's parameters before tuning; ``BaselineConfig.lightfm`` overrides them): tuning the
  hybrid does not change this baseline.
- ``hybrid``: the production model: ``recsys.pipeline.train.fit_hybrid`` with the production
  parameters and feature groups (``TrainParams.user_features`` / ``item_features``) and the
  production re-ranking (``recsys.evaluation.reranking``).
- ``sequential``: the session model of ``recsys.families.sequential`` (``recsys.families.sequential.evaluation``),
  configured by ``BaselineConfig.sequential``.

Every model is fitted on the same training interactions, those of the protocol.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

from recsys.constants import COL_TIMESTAMP, COL_USER, ITEM_FEATURE_GROUPS, USER_FEATURE_GROUPS
from recsys.evaluation.baselines import ALSModel, ItemKNNModel, TrendingModel
from recsys.evaluation.protocol import EvalSplit
from recsys.evaluation.reranking import ServingReranker, serving_rules
from recsys.evaluation.popularity import PopularityModel, RandomModel
from recsys.evaluation.holdout import Split
from recsys.families.hybrid.features import check_feature_names
from recsys.families.hybrid.fit import TrainParams, fit_hybrid
from recsys.settings import default, get_settings

MODEL_NAMES = ("random", "popularity", "trending", "item-knn", "als", "lightfm-cf", "hybrid", "sequential")
RERANK_FIELDS = ("max_per_category", "freshness_weight", "new_days", "trending_weight")
RUN_OPTIONS = ("window_days", "threads")  # TrainParams fields that are not part of a configuration
FEATURE_FIELDS = ("user_features", "item_features")
PLAIN_LIGHTFM = {"loss": "warp", "no_components": 64, "learning_rate": 0.05, "epochs": 30, "item_alpha": 1e-6,
                 "user_alpha": 1e-6, "user_features": (), "item_features": ()}


@dataclass(frozen=True)
class FeatureSet:
    """The attribute groups a model learns from (``recsys.constants.USER_FEATURE_GROUPS`` / ``ITEM_...``)."""

    user: tuple[str, ...] = USER_FEATURE_GROUPS
    item: tuple[str, ...] = ITEM_FEATURE_GROUPS

    def __post_init__(self):
        check_feature_names(self.user, self.item)

    @classmethod
    def of(cls, params: TrainParams) -> FeatureSet:
        return cls(params.user_features, params.item_features)

    @property
    def label(self) -> str:
        return f"user[{','.join(self.user) or 'ids'}] item[{','.join(self.item) or 'ids'}]"


def plain_lightfm(seed: int = 42, threads: int = 0) -> TrainParams:
    """The ``lightfm-cf`` baseline's parameters."""
    return TrainParams(**PLAIN_LIGHTFM, seed=seed, threads=threads)


def with_features(params: TrainParams, features: FeatureSet) -> TrainParams:
    return dataclasses.replace(params, user_features=features.user, item_features=features.item)


@dataclass(frozen=True)
class HybridConfig:
    """What the hybrid is trained with (``params``, its feature groups included), and the tunable knobs
    of its re-ranking (``max_per_category=None`` switches the diversity rule off, a weight of 0 a boost;
    ``new_days`` is the age at which the freshness boost reaches 0)."""

    params: TrainParams = field(default_factory=TrainParams)
    max_per_category: int | None = default("max_per_category")
    freshness_weight: float = default("rerank_freshness_weight")
    new_days: int = default("rerank_freshness_days")
    trending_weight: float = default("rerank_trending_weight")

    @property
    def features(self) -> FeatureSet:
        return FeatureSet.of(self.params)

    @classmethod
    def from_settings(cls, settings=None, **overrides) -> HybridConfig:
        s = settings or get_settings()
        return cls(params=TrainParams.from_settings(s, **overrides), max_per_category=s.max_per_category,
                   freshness_weight=s.rerank_freshness_weight, new_days=s.rerank_freshness_days,
                   trending_weight=s.rerank_trending_weight)

    @classmethod
    def from_dict(cls, data: dict, settings=None) -> HybridConfig:
        """From ``as_dict`` output (a tuned configuration); missing keys keep the production values."""
        base = cls.from_settings(settings)
        unknown = set(data) - {"params", *FEATURE_FIELDS, *RERANK_FIELDS}
        if unknown:
            raise ValueError(f"unknown hybrid configuration key(s) {sorted(unknown)}")
        given = data.get("params", {})
        bad = set(given) - ({f.name for f in dataclasses.fields(TrainParams)} - set(FEATURE_FIELDS))
        if bad:
            raise ValueError(f"unknown training parameter(s) {sorted(bad)}")
        features = {f: tuple(data.get(f, getattr(base.params, f))) for f in FEATURE_FIELDS}
        params = dataclasses.replace(base.params, **given, **features)
        return cls(params, **{f: data.get(f, getattr(base, f)) for f in RERANK_FIELDS})

    def as_dict(self) -> dict:
        """JSON-able; without ``window_days`` (the protocol's window applies) and ``threads`` (a run option)."""
        params = {k: v for k, v in asdict(self.params).items() if k not in (*RUN_OPTIONS, *FEATURE_FIELDS)}
        return {"params": params, "user_features": list(self.params.user_features),
                "item_features": list(self.params.item_features), **{f: getattr(self, f) for f in RERANK_FIELDS}}


@dataclass(frozen=True)
class BaselineConfig:
    trending_days: int = 7
    knn_neighbours: int = 100
    lightfm: TrainParams | None = None  # plain LightFM's parameters (None: plain_lightfm), on ids only
    als: dict = field(default_factory=lambda: {"factors": 64, "regularization": 0.05, "iterations": 15,
                                               "alpha": 10.0})
    # fields of recsys.families.sequential.config.SequentialConfig over its defaults and the hybrid's seed and threads
    # (the nightly selection: recsys.families.sequential.store.config_from_settings)
    sequential: dict = field(default_factory=dict)


def fit_lightfm(split: EvalSplit, params: TrainParams):
    """``fit_hybrid`` on the split's training interactions with the feature groups of ``params``.

    Every model trains on the same interactions (the protocol's), so ``params.window_days``
    is not applied here: the protocol's ``train_days`` is the one window of a run."""
    return fit_hybrid(split.frame, split.users, split.products, params,
                      info={"features": FeatureSet.of(params).label})


def hybrid_reranker(split: EvalSplit, part: Split, config: HybridConfig) -> ServingReranker:
    """The production re-ranking of ``config`` for the users and products of ``part`` of ``split``."""
    events = split.train_events
    now = split.cutoff_ms if split.cutoff_ms is not None else int(events[COL_TIMESTAMP].max()) + 1
    rules = serving_rules(config.max_per_category, config.freshness_weight, config.new_days)
    s = get_settings()
    return ServingReranker(part.products, events, now, rules, part.users[COL_USER].to_numpy(),
                           config.trending_weight, s.trending_days, s.recs_per_user, s.new_product_days)


def lightfm_cf_params(hybrid: HybridConfig, baselines: BaselineConfig) -> TrainParams:
    params = baselines.lightfm or plain_lightfm(hybrid.params.seed, hybrid.params.threads)
    return with_features(params, FeatureSet((), ()))


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
        return fit_lightfm(split, lightfm_cf_params(hybrid, baselines))
    if name == "hybrid":
        return fit_lightfm(split, hybrid.params)
    if name == "sequential":
        from recsys.families.sequential.evaluation import fit_sequential_model

        return fit_sequential_model(split, **{"seed": seed, "threads": hybrid.params.threads, **baselines.sequential})
    raise ValueError(f"unknown model {name!r}; known: {list(MODEL_NAMES)}")

"""Every compared model by name, fitted on the training side of an ``EvalSplit``.

- ``random``, ``popularity``, ``trending``: the simple baselines (``recsys.evaluation.baselines``);
- every registered model family (``recsys.families``) by its name, in the configuration model selection
  gives it (``CandidateSpec``: the family's configuration of the name, from the run's ``HybridConfig``
  and the per-family options of ``BaselineConfig``).

``HybridConfig`` is the production configuration: the default family's training parameters
(``TrainParams``: the ``RECSYS_*`` settings) and the re-ranking knobs every candidate is served with
(``recsys.evaluation.reranking``). Every model is fitted on the same training interactions, those of the
protocol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import pandas as pd

from recsys.constants import COL_TIMESTAMP, COL_USER, ITEM_FEATURE_GROUPS, USER_FEATURE_GROUPS
from recsys.evaluation.baselines import PopularityModel, RandomModel, TrendingModel
from recsys.evaluation.protocol import EvalSplit
from recsys.evaluation.reranking import ServingReranker, serving_rules
from recsys.evaluation.split import Split
from recsys.families import DEFAULT_FAMILY, ConfigBase, FrameHistory, TrainingData, TrainParams, family_of, names
from recsys.families.hybrid.params import check_feature_names
from recsys.settings import DEFAULTS, Settings, default

BASELINES = ("random", "popularity", "trending")
MODEL_NAMES = (*BASELINES, *names())
RERANK_FIELDS = ("max_per_category", "freshness_weight", "new_days", "trending_weight")
RUN_OPTIONS = ("window_days", "threads")  # TrainParams fields that are not part of a configuration
FEATURE_FIELDS = ("user_features", "item_features")


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

    @property
    def rerank(self) -> dict:
        """The re-ranking knobs every candidate is served (and measured) with."""
        return {f: getattr(self, f) for f in RERANK_FIELDS}

    @classmethod
    def from_settings(cls, settings, **overrides) -> HybridConfig:
        s = settings
        return cls(params=TrainParams.from_settings(s, **overrides), max_per_category=s.max_per_category,
                   freshness_weight=s.rerank_freshness_weight, new_days=s.rerank_freshness_days,
                   trending_weight=s.rerank_trending_weight)

    @classmethod
    def from_dict(cls, data: dict, settings=None) -> HybridConfig:
        """From ``as_dict`` output (a tuned configuration); missing keys keep the production values (of
        ``settings``, else the defaults)."""
        base = cls.from_settings(settings) if settings is not None else cls()
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


class BaselineConfig:
    """Per-family options over each family's defaults, by family name (``BaselineConfig(**{name: {option:
    value}})``, or ``options=``), and the trending baseline's window."""

    def __init__(self, trending_days: int = 7, options: Mapping[str, Mapping] | None = None, **families: Mapping):
        self.trending_days = int(trending_days)
        self.options = {**dict(options or {}), **families}

    def option(self, family: str) -> dict:
        return dict(self.options.get(family) or {})

    def with_option(self, family: str, values: Mapping) -> BaselineConfig:
        return BaselineConfig(self.trending_days, {**self.options, family: dict(values)})

    def as_dict(self) -> dict:
        return {"trending_days": self.trending_days, "options": self.options}

    def __eq__(self, other) -> bool:
        return isinstance(other, BaselineConfig) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(repr(self.as_dict()))

    def __repr__(self) -> str:
        return f"BaselineConfig(trending_days={self.trending_days}, options={self.options})"


def config_base(hybrid: HybridConfig, baselines: BaselineConfig) -> ConfigBase:
    """What the families build a candidate's configuration from."""
    return ConfigBase(hybrid.params, hybrid.rerank, baselines.options)


def training_data(split: EvalSplit) -> TrainingData:
    """The split's training side as a family trains on it (``recsys.families.base.TrainingData``)."""
    return TrainingData(split.frame, split.users, split.products, events=split.train_events)


def fit_family(name: str, config: Mapping, split: EvalSplit, hybrid: HybridConfig):
    """A model of family ``name`` with ``config``, fitted on the split's training interactions (with the run's
    seed and threads); ``ModelUnavailableError`` when the family cannot train here."""
    family = family_of(name)
    why = family.unavailable()
    if why:
        from recsys.families.base import ModelUnavailableError

        raise ModelUnavailableError(why)
    return family.fit(training_data(split), config, seed=hybrid.params.seed, threads=hybrid.params.threads)


def fit_hybrid_config(split: EvalSplit, config: HybridConfig):
    """The production family fitted with ``config``'s training parameters (``evaluate --tune``'s trials)."""
    return fit_family(DEFAULT_FAMILY, config.as_dict(), split, config)


def reranker(part: Split, events: pd.DataFrame, now_ms: int, config: HybridConfig,
             settings: Settings = DEFAULTS) -> ServingReranker:
    """The production re-ranking with ``config``'s knobs for the users and products of ``part``, from the
    ``events`` before ``now_ms`` (sessions, trending counts)."""
    rules = serving_rules(config.max_per_category, config.freshness_weight, config.new_days, settings)
    return ServingReranker(part.products, events, now_ms, rules, part.users[COL_USER].to_numpy(),
                           config.trending_weight, settings.trending_days, settings.recs_per_user,
                           settings.new_product_days)


def hybrid_reranker(split: EvalSplit, part: Split, config: HybridConfig,
                    settings: Settings = DEFAULTS) -> ServingReranker:
    """The production re-ranking of ``config`` for the users and products of ``part`` of ``split``."""
    events = split.train_events
    now = split.cutoff_ms if split.cutoff_ms is not None else int(events[COL_TIMESTAMP].max()) + 1
    return reranker(part, events, now, config, settings)


def build_model(name: str, split: EvalSplit, hybrid: HybridConfig, baselines: BaselineConfig = BaselineConfig()):
    """The fitted model called ``name`` (a baseline, or a family in its default configuration);
    raises ``ModelUnavailableError`` when it cannot run here."""
    seed = hybrid.params.seed
    if name == "random":
        return RandomModel(seed)
    if name == "popularity":
        return PopularityModel.fit(split.frame)
    if name == "trending":
        return TrendingModel.fit(split.train_events, split.frame, baselines.trending_days, now_ms=split.cutoff_ms)
    if name not in names():
        raise ValueError(f"unknown model {name!r}; known: {list(MODEL_NAMES)}")
    family = family_of(name)
    base = config_base(hybrid, baselines)
    config = family.default_config(base)
    return fit_family(name, config, split, hybrid)


def family_config(name: str, hybrid: HybridConfig, baselines: BaselineConfig) -> dict:
    """The configuration ``build_model`` fits family ``name`` with (``evaluate``'s output)."""
    return family_of(name).default_config(config_base(hybrid, baselines))

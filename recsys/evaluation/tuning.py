"""A small, time-boxed search over the hybrid's configuration, on a validation split.

The test period is never looked at: the training side of the evaluation split is
split again in time (the last ``validation_days`` of it are the validation period,
by default as long as the test period, at most a third of the training span) and
every trial is trained before and measured after that second cut-off.

The search is coordinate-wise from the production configuration: for each
dimension in ``SPACE`` order, try each value with the others at their best so far
and keep a value only if it improves the objective (NDCG@k with the re-ranking) by
more than ``MIN_GAIN`` (relative), so that seed noise does not move the search.
The re-ranking knobs come first and again last: they need no refit (the best
model so far is reused), so they are cheap; the model's dimensions (feature set,
loss, components, learning rate, epochs, regularisation) are in
between. The search stops before a trial would overrun the time budget. Training
is seeded (bit-identical with one thread), so a budget gives a reproducible answer.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from recsys.constants import COL_TIMESTAMP, MS_PER_DAY
from recsys.evaluation.models import (
    RERANK_FIELDS, FeatureSet, HybridConfig, fit_lightfm, hybrid_reranker, with_features,
)
from recsys.evaluation.protocol import EvalSplit, validation_split
from recsys.evaluation.scoring import measure

FEATURE_SETS = (
    FeatureSet(),  # every attribute group
    FeatureSet((), ()),
    FeatureSet((), ("name",)),
    FeatureSet(("country",), ("name",)),
    FeatureSet(("country", "segment"), ("name",)),
    FeatureSet((), ("category", "name")),
    FeatureSet((), ("price", "name")),
    FeatureSet((), ("category",)),
)
RERANK_SPACE: tuple[tuple[str, tuple], ...] = (
    ("trending_weight", (0.0, 0.25, 0.5, 1.0, 2.0)),  # recently popular products up
    ("freshness_weight", (0.0, 0.1, 0.3, 0.5, 1.0, 2.0)),  # new products up ...
    ("new_days", (14, 30, 60, 90, 180)),  # ... when younger than this at the cut-off
)
MODEL_SPACE: tuple[tuple[str, tuple], ...] = (
    ("features", FEATURE_SETS),
    ("loss", ("warp", "bpr", "warp-kos")),
    ("no_components", (16, 32, 64, 96, 128)),
    ("learning_rate", (0.01, 0.025, 0.05, 0.075, 0.1)),
    ("epochs", (10, 20, 30, 45, 60)),
    ("alpha", (0.0, 1e-6, 1e-5, 1e-4)),  # item_alpha = user_alpha
)
SPACE = RERANK_SPACE + MODEL_SPACE + RERANK_SPACE
MIN_GAIN = 0.01  # a value must beat the best so far by 1% (relative) to be kept
SETTINGS_NAMES = {"epochs": "RECSYS_EPOCHS", "loss": "RECSYS_LOSS", "no_components": "RECSYS_NO_COMPONENTS",
                  "learning_rate": "RECSYS_LEARNING_RATE", "item_alpha": "RECSYS_ITEM_ALPHA",
                  "user_alpha": "RECSYS_USER_ALPHA", "user_features": "RECSYS_USER_FEATURES",
                  "item_features": "RECSYS_ITEM_FEATURES"}
RERANK_SETTINGS = {"max_per_category": "RECSYS_MAX_PER_CATEGORY",
                   "freshness_weight": "RECSYS_RERANK_FRESHNESS_WEIGHT", "new_days": "RECSYS_RERANK_FRESHNESS_DAYS",
                   "trending_weight": "RECSYS_RERANK_TRENDING_WEIGHT"}


def setting_value(value) -> object:
    """A configuration value as its environment variable spells it (feature groups comma-separated)."""
    return ",".join(value) if isinstance(value, (tuple, list)) else value


def with_value(config: HybridConfig, dimension: str, value) -> HybridConfig:
    """``config`` with one search dimension set to ``value``."""
    if dimension == "features":
        return dataclasses.replace(config, params=with_features(config.params, value))
    if dimension in RERANK_FIELDS:
        return dataclasses.replace(config, **{dimension: value})
    if dimension == "alpha":
        return dataclasses.replace(config, params=dataclasses.replace(config.params, item_alpha=value,
                                                                      user_alpha=value))
    return dataclasses.replace(config, params=dataclasses.replace(config.params, **{dimension: value}))


def same_model(a: HybridConfig, b: HybridConfig) -> bool:
    """Whether two configurations train the same model (they may differ in re-ranking only)."""
    return a.params == b.params


def trial(config: HybridConfig, val: EvalSplit, objective: str, model=None) -> tuple[dict, object]:
    """Fit (unless ``model`` is given) on the validation split's training side, measure after it."""
    started = time.perf_counter()
    model = model if model is not None else fit_lightfm(val, config.params)
    k = val.protocol.k
    m = measure(model, val.main, k, seed=val.protocol.seed, rerank=hybrid_reranker(val, val.main, config),
                with_curves=False, with_auc=False)
    result = {"config": config.as_dict(), objective: m[objective], f"precision@{k}": m[f"precision@{k}"],
              "seconds": round(time.perf_counter() - started, 1)}
    return result, model


def summary(result: dict) -> str:
    """One line for a trial: what was tried and what it scored."""
    c, p = result["config"], result["config"]["params"]
    scores = ", ".join(f"{k} {v:.4f}" for k, v in result.items() if "@" in k)
    return (f"user[{','.join(c['user_features'])}] item[{','.join(c['item_features'])}] "
            f"{p['loss']} dim {p['no_components']} lr {p['learning_rate']} epochs {p['epochs']} "
            f"alpha {p['item_alpha']} | trending {c['trending_weight']} freshness {c['freshness_weight']}/"
            f"{c['new_days']}d cap {c['max_per_category']}: {scores} ({result['seconds']} s)")


@dataclass
class _Search:
    val: EvalSplit
    objective: str
    best_config: HybridConfig
    best: dict
    model: object  # the best configuration's fitted model
    trials: list[dict] = field(default_factory=list)
    estimate: dict[bool, float] = field(default_factory=dict)  # expected seconds: refit or not

    def run(self, candidate: HybridConfig) -> dict:
        reuse = same_model(candidate, self.best_config)
        result, model = trial(candidate, self.val, self.objective, self.model if reuse else None)
        self.trials.append(result)
        self.estimate[reuse] = result["seconds"]
        if result[self.objective] > self.best[self.objective] * (1.0 + MIN_GAIN):
            self.best_config, self.best, self.model = candidate, result, model
        return result


def tune_hybrid(split: EvalSplit, start: HybridConfig, *, budget_seconds: float,
                validation_days: int | None = None, on_trial: Callable[[dict], None] | None = None) -> dict:
    """Coordinate search from ``start`` within ``budget_seconds``; returns the best config and every trial."""
    began = time.perf_counter()
    val, described = validation_split(split, validation_days)
    objective = f"ndcg@{split.protocol.k}"
    first, model = trial(start, val, objective)
    search = _Search(val, objective, start, first, model, [first], {False: first["seconds"]})
    (on_trial or (lambda r: None))(first)
    for dimension, values in SPACE:
        measured = search.best_config  # the dimension's starting point: already measured
        for value in values:
            candidate = with_value(search.best_config, dimension, value)
            if candidate in (search.best_config, measured):
                continue
            reuse = same_model(candidate, search.best_config)
            expected = search.estimate.get(reuse, search.estimate[False])
            if time.perf_counter() - began + expected > budget_seconds:
                continue  # too long for what is left; a cheaper (re-ranking) trial may still fit
            result = search.run(candidate)
            (on_trial or (lambda r: None))(result)
    return _result(search, described, began, budget_seconds, training_days(split))


def training_days(split: EvalSplit) -> int:
    """The training window of the run in whole days (every model, the hybrid included, trains on it)."""
    if split.protocol.train_days:
        return split.protocol.train_days
    stamps = split.train_events[COL_TIMESTAMP]
    return math.ceil((int(stamps.max()) + 1 - int(stamps.min())) / MS_PER_DAY)


def _result(search: _Search, described: str, began: float, budget_seconds: float, window_days: int) -> dict:
    config = search.best_config
    params = dataclasses.asdict(config.params)
    return {
        "config": config,
        "best": config.as_dict(),
        "validation_score": {search.objective: search.best[search.objective]},
        "settings": {"RECSYS_TRAINING_WINDOW_DAYS": window_days}
                    | {env: setting_value(params[name]) for name, env in SETTINGS_NAMES.items()}
                    | {env: getattr(config, name) for name, env in RERANK_SETTINGS.items()},
        "objective": search.objective,
        "validation": described,
        "trials_run": len(search.trials),
        "trials": search.trials,
        "seconds": time.perf_counter() - began,
        "budget_minutes": round(budget_seconds / 60, 2),
    }

"""Hyper-parameter searches on a validation split, never on the test: ``tune_hybrid`` (``evaluate --tune``, a
coordinate search over the production configuration and its re-ranking) and ``search`` (the nightly run's
weekly Optuna search of the leading families, each through its family's ``search_space``).

``tune_hybrid``: a small, time-boxed search over the hybrid's configuration.

The test period is never looked at: every trial is trained and measured on the
validation split carved from the training side of the evaluation split
(``recsys.evaluation.validation``), the same split the model selection uses.

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
import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from recsys.constants import COL_TIMESTAMP, MS_PER_DAY
from recsys.evaluation.models import (
    RERANK_FIELDS, FeatureSet, HybridConfig, fit_hybrid_config, hybrid_reranker, with_features,
)
from recsys.evaluation.protocol import EvalSplit
from recsys.evaluation.measure import measure
from recsys.evaluation.selection import CandidateSpec, served_metrics
from recsys.evaluation.validation import evaluate_validation
from recsys.families import DEFAULT_FAMILY, family_of

log = logging.getLogger(__name__)
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
    model = model if model is not None else fit_hybrid_config(val, config)
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
                validation: tuple[EvalSplit, dict] | None = None,
                on_trial: Callable[[dict], None] | None = None) -> dict:
    """Coordinate search from ``start`` within ``budget_seconds`` on ``validation`` (the split and how it
    was carved, ``recsys.evaluation.validation``; default: ``evaluate_validation(split)``, the model
    selection's split); returns the best config and every trial."""
    began = time.perf_counter()
    val, how = validation or evaluate_validation(split)
    described = f"{how['description']}, {how['users']} users"
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


# --- the weekly search of the leading families (the nightly run: recsys.pipeline.model_choice) -------------
def tunable(spec: CandidateSpec) -> bool:
    """The family of ``spec`` has a search space (a family bounded by its time budget has none)."""
    return family_of(spec.family).search_space(_Probe()) is not None


class _Probe:
    """A stand-in Optuna trial that only says whether a family suggests anything."""

    def suggest_int(self, name, low, high, **kw):
        return low

    def suggest_float(self, name, low, high, **kw):
        return low

    def suggest_categorical(self, name, choices):
        return choices[0]


def apply_tuned(spec: CandidateSpec, tuned: dict | None) -> CandidateSpec:
    """``spec`` with a tuned configuration (``{"config": ...}`` of a tuning record), or unchanged."""
    config = (tuned or {}).get("config")
    if not config:
        return spec
    family = family_of(spec.family)
    values = family.values_of(family.with_values(spec.config(), config))
    if spec.family == DEFAULT_FAMILY:  # the production configuration carries the run's training parameters
        tuned_params = family.with_values(spec.hybrid.as_dict(), values)["params"]
        return dataclasses.replace(spec, hybrid=dataclasses.replace(
            spec.hybrid, params=dataclasses.replace(spec.hybrid.params, **tuned_params)))
    return dataclasses.replace(spec, tuned=tuple(sorted(values.items())))


def suggest(trial, spec: CandidateSpec) -> CandidateSpec:
    """A candidate of ``spec``'s family with the trial's hyper-parameters."""
    return apply_tuned(spec, {"config": family_of(spec.family).search_space(trial)})


def current_values(spec: CandidateSpec) -> dict:
    """The trial values of ``spec``'s configuration (the search's first trial)."""
    return family_of(spec.family).values_of(spec.config())


def leading(specs: tuple[CandidateSpec, ...], last_selection: dict | None, n: int) -> list[CandidateSpec]:
    """The best candidate of each of the ``n`` best families of the last selection (else the first ones),
    among the families with a search space (``ModelFamily.search_space``; a family bounded by its time budget has none)."""
    specs = tuple(s for s in specs if tunable(s))
    by_name = {s.name: s for s in specs}
    order = list(specs)
    if last_selection:
        metric = last_selection["metric"]
        rows = sorted((r for r in last_selection["candidates"] if r.get("validation") and r["name"] in by_name),
                      key=lambda r: -r["validation"][metric])
        order = [by_name[r["name"]] for r in rows] + [s for s in specs if s.name not in {r["name"] for r in rows}]
    out, families = [], set()
    for spec in order:
        if spec.family not in families:
            families.add(spec.family)
            out.append(spec)
    return out[:n]


def search(val: EvalSplit, specs: list[CandidateSpec], metric: str, budget_seconds: float, day: dt.date,
           seed: int = 42) -> dict:
    """An Optuna (TPE, seeded) search of each of ``specs`` on ``val`` for ``budget_seconds / len(specs)``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    k = int(metric.partition("@")[2])
    out, share = {}, budget_seconds / max(len(specs), 1)
    for spec in specs:
        began = time.perf_counter()

        def objective(trial, spec=spec):
            candidate = suggest(trial, spec)
            metrics = served_metrics(candidate, candidate.fit(val), val, k)
            trial.set_user_attr("config", candidate.config())
            return float(metrics[metric])

        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.enqueue_trial(current_values(spec))
        study.optimize(objective, timeout=share)
        default = study.trials[0].value
        best = study.best_trial
        out[spec.name] = {"family": spec.family, "validation": best.value, "default_validation": default,
                          "trials": len(study.trials), "seconds": round(time.perf_counter() - began, 1),
                          "config": best.user_attrs["config"] if best.number > 0 and best.value > default else None}
        log.info("tuning %s: %d trials, %s %.4f (current configuration %.4f)", spec.name, len(study.trials),
                 metric, best.value, default)
    return {"searched_on": day.isoformat(), "metric": metric, "budget_seconds": budget_seconds, "candidates": out}

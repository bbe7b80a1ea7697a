"""Weekly tuning: a time-boxed Optuna search of the leading families' hyper-parameters on the nightly
validation split, kept in the registry and used by the nightly runs until the next search.

- When: the nightly train step searches when the newest tuning record in the registry (on a model
  row trained for a day up to the processed one) is ``RECSYS_TUNING_INTERVAL_DAYS`` days old or more,
  or there is none (0 switches tuning off).
- What: the ``RECSYS_TUNING_FAMILIES`` best families of the last selection (its table on the registry
  row) that have a search space (``TUNED_FAMILIES``: not the sequential model), each by its best
  candidate; without a previous selection, the first such families of the candidate list. Each gets an
  equal share of ``RECSYS_TUNING_BUDGET_SECONDS``; the first trial is the current configuration, so a
  tuned configuration is kept only when it beats it on validation.
- Where: the same validation split as the selection (the training window's newest days, never the day
  evaluate scores): the search never sees an evaluation's test period.
- Kept: ``params["tuning"]`` of the model registered that night (``{"searched_on", "metric",
  "candidates": {name: {"config", "validation", "default_validation", "trials"}}}``), carried to every
  later model's row until the next search, so the newest row always says which configurations were used.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time

from sqlalchemy import Engine, select

from recsys.db.models import RecommendationModel
from recsys.evaluation.protocol import EvalSplit
from recsys.evaluation.selection import CandidateSpec, served_metrics
from recsys.families.hybrid.fit import TrainParams
from recsys.settings import Settings

log = logging.getLogger(__name__)
LIGHTFM_SPACE = ("no_components", "learning_rate", "epochs", "item_alpha")
TUNED_FAMILIES = ("hybrid", "lightfm-cf", "als", "item-knn")  # a search space each (``suggest``)


def latest_record(engine: Engine, day: dt.date, key: str) -> dict | None:
    """``params[key]`` of the newest model row trained for a day up to ``day`` that has one."""
    stmt = (select(RecommendationModel.params).where(RecommendationModel.train_date <= day)
            .order_by(RecommendationModel.train_date.desc(), RecommendationModel.version.desc()))
    with engine.connect() as conn:
        for (params,) in conn.execute(stmt):
            if (params or {}).get(key):
                return params[key]
    return None


def is_due(record: dict | None, day: dt.date, interval_days: int) -> bool:
    """A new search is due: tuning is on and the last one is ``interval_days`` old or more (or missing)."""
    if interval_days <= 0:
        return False
    if not record:
        return True
    return (day - dt.date.fromisoformat(record["searched_on"])).days >= interval_days


def apply_tuned(spec: CandidateSpec, tuned: dict | None) -> CandidateSpec:
    """``spec`` with a tuned configuration (``{"config": ...}`` of a tuning record), or unchanged."""
    config = (tuned or {}).get("config")
    if not config:
        return spec
    if spec.family in ("hybrid", "lightfm-cf"):
        values = {k: v for k, v in config.get("params", {}).items() if k in LIGHTFM_SPACE}
        if spec.family == "hybrid":
            return dataclasses.replace(spec, hybrid=dataclasses.replace(
                spec.hybrid, params=dataclasses.replace(spec.hybrid.params, **values)))
        from recsys.evaluation.models import lightfm_cf_params

        params = dataclasses.replace(lightfm_cf_params(spec.hybrid, spec.baselines), **values)
        return dataclasses.replace(spec, baselines=dataclasses.replace(spec.baselines, lightfm=params))
    if spec.family == "als":
        return dataclasses.replace(spec, baselines=dataclasses.replace(spec.baselines, als=dict(config)))
    return dataclasses.replace(spec, baselines=dataclasses.replace(
        spec.baselines, knn_neighbours=int(config["neighbours"])))


def suggest(trial, spec: CandidateSpec) -> CandidateSpec:
    """A candidate of ``spec``'s family with the trial's hyper-parameters."""
    if spec.family in ("hybrid", "lightfm-cf"):
        params = {"params": {
            "no_components": trial.suggest_int("no_components", 16, 128, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.15, log=True),
            "epochs": trial.suggest_int("epochs", 5, 60, log=True),
            "item_alpha": trial.suggest_float("item_alpha", 1e-7, 1e-3, log=True)}}
        return apply_tuned(spec, {"config": params})
    if spec.family == "als":
        return apply_tuned(spec, {"config": {
            "factors": trial.suggest_int("factors", 16, 128, log=True),
            "regularization": trial.suggest_float("regularization", 1e-3, 1.0, log=True),
            "iterations": trial.suggest_int("iterations", 5, 30),
            "alpha": trial.suggest_float("alpha", 1.0, 40.0, log=True)}})
    return apply_tuned(spec, {"config": {"neighbours": trial.suggest_int("neighbours", 10, 400, log=True)}})


def current_values(spec: CandidateSpec) -> dict:
    """The trial values of ``spec``'s configuration (the search's first trial)."""
    if spec.family in ("hybrid", "lightfm-cf"):
        params = spec.hybrid.params if spec.family == "hybrid" else spec.config()["params"]
        params = dataclasses.asdict(params) if isinstance(params, TrainParams) else params
        return {k: params[k] for k in LIGHTFM_SPACE}
    config = spec.config()
    return dict(config) if spec.family == "als" else {"neighbours": config["neighbours"]}


def leading(specs: tuple[CandidateSpec, ...], last_selection: dict | None, n: int) -> list[CandidateSpec]:
    """The best candidate of each of the ``n`` best families of the last selection (else the first ones),
    among the families with a search space (the sequential model has none: its time budget bounds it)."""
    specs = tuple(s for s in specs if s.family in TUNED_FAMILIES)
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


def search_leading(engine: Engine, day: dt.date, val: EvalSplit, specs: tuple[CandidateSpec, ...],
                   settings: Settings) -> dict:
    """A new search of the leading families of the last selection (``leading``) on ``val``."""
    chosen = leading(specs, latest_record(engine, day, "selection"), settings.tuning_families)
    log.info("tuning %s on the validation split (budget %.0f s)", [s.name for s in chosen],
             settings.tuning_budget_seconds)
    return search(val, chosen, settings.selection_metric, settings.tuning_budget_seconds, day, settings.seed)


def tuned_configs(record: dict | None) -> dict:
    """``{candidate name: {"config": ...}}`` of a tuning record's improvements (for ``nightly_specs``)."""
    return {name: c for name, c in ((record or {}).get("candidates") or {}).items() if c.get("config")}

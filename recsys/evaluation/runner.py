"""One evaluation run: split, (optionally) tune the hybrid, fit and measure every model on the same split.

``run_evaluation`` returns the JSON-able result ``{"protocol", "models", "config", "tuning"}``;
``recsys.evaluation.report.write_outputs`` writes it. Progress bars (tqdm, on stderr)
show the long steps: fitting each model and scoring users in blocks.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from recsys.evaluation.baselines import ModelUnavailableError
from recsys.evaluation.models import (
    MODEL_NAMES, BaselineConfig, HybridConfig, build_model, family_config, hybrid_reranker,
)
from recsys.families import DEFAULT_FAMILY, names
from recsys.evaluation.protocol import EvalSplit
from recsys.evaluation.measure import measure
from recsys.evaluation.errors import EvaluationError
from recsys.evaluation.selection import (
    CandidateSpec, candidate_specs, fallback_selection, select_model, served_metrics,
)
from recsys.evaluation.tuning import summary, tune_hybrid
from recsys.evaluation.validation import DEFAULT_MIN_USERS, evaluate_validation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    models: tuple[str, ...] = MODEL_NAMES
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    tune_minutes: float | None = None  # None: no tuning
    progress: bool = True
    selection: bool = False  # the model selection table and its ``auto`` row (on in the CLI)
    selection_metric: str = "ndcg@10"
    selection_budget_seconds: float = 900.0
    selection_min_users: int = DEFAULT_MIN_USERS  # the validation split's wanted users (recsys.evaluation.validation)

    def __post_init__(self):
        if self.selection_min_users < 1:
            raise ValueError(f"selection_min_users must be >= 1, got {self.selection_min_users}")
        unknown = [m for m in self.models if m not in MODEL_NAMES]
        if unknown or not self.models:
            raise ValueError(f"unknown or no model(s) {unknown}; known: {list(MODEL_NAMES)}")


def _bar(progress: bool, desc: str, leave: bool = True):
    """``tqdm`` partial (or plain ``iter`` when switched off or not installed)."""
    if not progress:
        return iter
    try:
        from tqdm import tqdm
    except ImportError:
        return iter
    return lambda it: tqdm(it, desc=desc, leave=leave, file=sys.stderr, dynamic_ncols=True)


@contextmanager
def _trial_bar(progress: bool):
    """A callback for each tuning trial: logs it and advances a progress bar."""
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(desc="tuning trials", unit="trial", file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            pass

    def on_trial(result: dict) -> None:
        log.info("trial %s", summary(result))
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: round(v, 4) for k, v in result.items() if k.startswith("ndcg")})

    try:
        yield on_trial
    finally:
        if bar is not None:
            bar.close()


def evaluate_one(name: str, split: EvalSplit, options: RunOptions, hybrid: HybridConfig) -> dict:
    """Fit ``name`` on the split's training side and measure it (main table, groups, new items)."""
    started = time.perf_counter()
    try:
        model = build_model(name, split, hybrid, options.baselines)
    except ModelUnavailableError as exc:
        return {"available": False, "reason": str(exc)}
    fitted = time.perf_counter()
    p = split.protocol
    reranks = name == DEFAULT_FAMILY  # the production model's row: as served (the others: their raw lists)
    main_rerank = hybrid_reranker(split, split.main, hybrid) if reranks else None
    out = measure(model, split.main, p.k, seed=p.seed, groups=split.groups, rerank=main_rerank,
                  blocks=_bar(options.progress, f"scoring {name}", leave=False))
    if split.new_items is not None:
        new_rerank = hybrid_reranker(split, split.new_items, hybrid) if reranks else None
        new = measure(model, split.new_items, p.k, seed=p.seed, rerank=new_rerank, with_curves=False)
        out["new_items"] = {key: v for key, v in new.items() if key != "groups"}
    if reranks:  # ablation: the same model's lists without any re-ranking
        raw = measure(model, split.main, p.k, seed=p.seed, with_curves=False, with_auc=False)
        out["without_rerank"] = {key: v for key, v in raw.items() if "@" in key}
    out["fit_seconds"] = round(fitted - started, 2)
    if getattr(model, "training_summary", None):  # epochs, early stopping (a family that reports them)
        out["training"] = model.training_summary
    out["eval_seconds"] = round(time.perf_counter() - fitted, 2)
    if name in names():
        out["config"] = family_config(name, hybrid, options.baselines)
    return out


def _served_on_test(spec: CandidateSpec, split: EvalSplit) -> dict:
    started = time.perf_counter()
    try:
        model = spec.fit(split)
    except ModelUnavailableError as exc:
        return {"available": False, "reason": str(exc)}
    fitted = time.perf_counter()
    return served_metrics(spec, model, split, split.protocol.k) | {"fit_seconds": round(fitted - started, 2)}


Validation = tuple[EvalSplit | None, dict | str]  # the split and how it was carved, or no split and why


def validation_for(split: EvalSplit, options: RunOptions) -> Validation:
    """The one validation split of a run (the selection and the tuning search on it), carved from the
    training side only (``recsys.evaluation.validation``), or ``(None, why not)``."""
    try:
        return evaluate_validation(split, options.selection_min_users)
    except EvaluationError as exc:
        return None, str(exc)


def run_selection(split: EvalSplit, options: RunOptions, hybrid: HybridConfig,
                  validation: Validation | None = None) -> dict:
    """What the pipeline would choose (on a validation split carved from the training side only), every
    candidate retrained on the whole training side and measured on the test as served, and the ``auto``
    row: the chosen candidate retrained once more, as the pipeline would, and measured the same way."""
    specs = candidate_specs(hybrid, options.baselines)
    val, described = validation or validation_for(split, options)
    if val is None:
        log.warning("no model selection (%s): the default candidate is kept", described)
        selection = fallback_selection(specs, options.selection_metric, described)
        described = {"protocol": None, "description": described, "users": 0}
    else:
        log.info("model selection on %s (%s users; %s; %d candidates, budget %.0f s)", described["description"],
                 described["users"], described["reason"], len(specs), options.selection_budget_seconds)
        selection = select_model(val, specs, metric=options.selection_metric,
                                 budget_seconds=options.selection_budget_seconds,
                                 on_row=lambda r: log.info("candidate %s: %s", r["name"], r["skipped"] or r["validation"]))
    test = {spec.name: _served_on_test(spec, split) for spec in _bar(options.progress, "candidates")(specs)}
    chosen = next(spec for spec in specs if spec.name == selection.chosen["name"])
    auto = _served_on_test(chosen, split) | {"chosen": chosen.name, "family": chosen.family}
    return selection.as_dict() | {"validation_split": described["description"], "validation_users": described["users"],
                                  "validation": described, "test": test, "auto": auto}


def run_evaluation(split: EvalSplit, options: RunOptions = RunOptions()) -> dict:
    """Every model of ``options`` on ``split``; the hybrid (and LightFM CF's parameters) tuned first if asked."""
    hybrid, tuning = options.hybrid, None
    validation = validation_for(split, options) if options.tune_minutes or options.selection else None
    if options.tune_minutes:
        if validation[0] is None:
            raise EvaluationError(f"--tune searches on a validation split carved from the training side, and there "
                                  f"is none: {validation[1]}")
        log.info("tuning the hybrid for at most %.1f minutes", options.tune_minutes)
        with _trial_bar(options.progress) as on_trial:
            tuning = tune_hybrid(split, hybrid, budget_seconds=options.tune_minutes * 60, validation=validation,
                                 on_trial=on_trial)
        hybrid = tuning.pop("config")
    models = {}
    for name in _bar(options.progress, "models")(options.models):
        models[name] = evaluate_one(name, split, options, hybrid)
        m, k = models[name], split.protocol.k
        if m.get("available", True):
            log.info("%s: precision@%d %.4f, ndcg@%d %.4f (fit %.1f s)", name, k, m[f"precision@{k}"], k,
                     m[f"ndcg@{k}"], m["fit_seconds"])
    selection = run_selection(split, options, hybrid, validation) if options.selection else None
    return {
        "protocol": split.info,
        "models": models,
        "selection": selection,
        "config": {"hybrid": hybrid.as_dict(), "baselines": options.baselines.as_dict()},
        "tuning": tuning,
    }

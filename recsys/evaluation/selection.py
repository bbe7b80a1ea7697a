"""Model selection per shop: train small, named configurations of each model family on the training
side of a validation split, score them as they would be served, and pick the best by one metric.

- Candidates (``candidate_specs``): the hybrid LightFM (today's defaults ``hybrid-default``, the same
  with WARP ``hybrid-warp``, on ids only ``hybrid-nofeatures``), plain LightFM WARP on ids
  (``lightfm-cf``), implicit ALS (``als``), co-occurrence item-kNN (``item-knn``) and the sequential
  session model (``sequential``: ``BaselineConfig.sequential`` over its defaults; without torch its row
  is skipped as "unavailable", never a failure).
- Scoring: every candidate's lists go through the production re-ranking (precompute's boost, stock
  and diversity, then serving's rules: ``recsys.evaluation.reranking``), since whichever wins is
  served that way; the metric (``RECSYS_SELECTION_METRIC``, default ``ndcg@10``) is measured on the
  validation split's truth only.
- Time box: ``hybrid-default`` (the fallback, so there is always a choice) runs first, then the
  others in order; a candidate whose expected cost (the last fit + score of its family, else of any
  candidate, and at least the training time budget of its configuration: the sequential model's
  ``time_budget_s``) would overrun ``budget_seconds`` is skipped, and the table says so.
- Choice: the best metric; exact ties go to the secondary metric, then to the earlier candidate.
  Without a usable validation split (too little data), ``fallback_selection`` keeps the default.

``select_model`` is pure: it reads only the validation split it is given (built from training
events by ``recsys.evaluation.protocol.validation_split``), never the test period.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from recsys.evaluation.baselines import ModelUnavailableError
from recsys.evaluation.models import (
    FEATURE_FIELDS, BaselineConfig, FeatureSet, HybridConfig, build_model, hybrid_reranker, lightfm_cf_params,
    with_features,
)
from recsys.evaluation.protocol import EvalSplit
from recsys.evaluation.scoring import measure
from recsys.constants import MODEL_FAMILIES, SELECTION_CANDIDATES
from recsys.settings import check_ranking_metric

FAMILIES = MODEL_FAMILIES
DEFAULT_CANDIDATE = SELECTION_CANDIDATES[0]


@dataclass(frozen=True)
class CandidateSpec:
    """One named configuration of a family. ``hybrid`` carries the re-ranking every family is served with
    (and, for the hybrid family, its training parameters); ``baselines`` the other families' parameters."""

    name: str
    family: str
    hybrid: HybridConfig
    baselines: BaselineConfig = field(default_factory=BaselineConfig)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; known: {list(FAMILIES)}")

    def config(self) -> dict:
        """The family's configuration (JSON-able), as the registry will record it."""
        if self.family == "hybrid":
            return self.hybrid.as_dict()
        if self.family == "lightfm-cf":
            params = dataclasses.asdict(lightfm_cf_params(self.hybrid, self.baselines))
            return {"params": {k: v for k, v in params.items() if k not in FEATURE_FIELDS}, "features": "ids only"}
        if self.family == "als":
            return dict(self.baselines.als)
        if self.family == "sequential":
            return self.sequential_config().as_dict()
        return {"neighbours": self.baselines.knn_neighbours}

    def sequential_config(self):
        """The ``SequentialConfig`` the sequential family fits with (``build_model``'s)."""
        from recsys.families.sequential.evaluation import sequential_config

        params = self.hybrid.params
        return sequential_config(**{"seed": params.seed, "threads": params.threads, **self.baselines.sequential})

    @property
    def time_budget_seconds(self) -> float:
        """Seconds the configuration itself allows its training (0: none; the sequential model trains
        until ``time_budget_s`` unless early stopping ends it first)."""
        return float(self.sequential_config().time_budget_s) if self.family == "sequential" else 0.0

    def fit(self, split: EvalSplit):
        """The model trained on ``split``'s training interactions."""
        return build_model(self.family, split, self.hybrid, self.baselines)


def candidate_specs(base: HybridConfig, baselines: BaselineConfig = BaselineConfig()) -> tuple[CandidateSpec, ...]:
    """The candidates, ``hybrid-default`` (``base``, the production configuration) first; a configuration
    equal to an earlier one (e.g. ``hybrid-nofeatures`` when the defaults are ids only) is left out."""
    warp = dataclasses.replace(base, params=dataclasses.replace(base.params, loss="warp"))
    ids_only = dataclasses.replace(base, params=with_features(base.params, FeatureSet((), ())))
    specs = [CandidateSpec(DEFAULT_CANDIDATE, "hybrid", base, baselines),
             CandidateSpec("item-knn", "item-knn", base, baselines),
             CandidateSpec("als", "als", base, baselines),
             CandidateSpec("lightfm-cf", "lightfm-cf", base, baselines),
             CandidateSpec("hybrid-warp", "hybrid", warp, baselines),
             CandidateSpec("hybrid-nofeatures", "hybrid", ids_only, baselines),
             CandidateSpec("sequential", "sequential", base, baselines)]
    out, seen = [], []
    for spec in specs:
        key = (spec.family, spec.config())
        if key not in seen:
            seen.append(key)
            out.append(spec)
    return tuple(out)


def served_metrics(spec: CandidateSpec, model, split: EvalSplit, k: int) -> dict:
    """List metrics at ``k`` of ``model``'s lists after the production re-ranking, on ``split.main``."""
    rerank = hybrid_reranker(split, split.main, spec.hybrid)
    m = measure(model, split.main, k, seed=split.protocol.seed, rerank=rerank, with_curves=False, with_auc=False)
    return {key: v for key, v in m.items() if "@" in key or key in ("coverage", "diversity", "novelty", "users")}


def secondary_metric(metric: str) -> str:
    name, _, k = metric.partition("@")
    return f"{'precision' if name == 'ndcg' else 'ndcg'}@{k}"


@dataclass
class Selection:
    """The table of candidates (run or skipped), the metric, and the chosen one."""

    metric: str
    rows: list[dict]
    seconds: float
    budget_seconds: float

    @property
    def chosen(self) -> dict:
        return next(r for r in self.rows if r["chosen"])

    def as_dict(self) -> dict:
        return {"metric": self.metric, "secondary_metric": secondary_metric(self.metric), "chosen": self.chosen["name"],
                "seconds": round(self.seconds, 1), "budget_seconds": self.budget_seconds, "candidates": self.rows}


def _row(spec: CandidateSpec, **values) -> dict:
    return {"family": spec.family, "name": spec.name, "config": spec.config(), "validation": None,
            "fit_seconds": None, "score_seconds": None, "chosen": False, "skipped": None, **values}


def _choose(rows: list[dict], metric: str) -> None:
    ran = [r for r in rows if r["validation"] is not None]
    if not ran:
        raise ModelUnavailableError("no selection candidate could run")
    second = secondary_metric(metric)
    order = {id(r): i for i, r in enumerate(rows)}
    best = max(ran, key=lambda r: (r["validation"][metric], r["validation"].get(second, 0.0), -order[id(r)]))
    best["chosen"] = True


def select_model(val: EvalSplit, specs: Sequence[CandidateSpec], *, metric: str = "ndcg@10",
                 budget_seconds: float = 900.0, on_row: Callable[[dict], None] | None = None) -> Selection:
    """Train and score every candidate of ``specs`` on the validation split ``val`` within the budget."""
    metric = check_ranking_metric(metric)
    if not specs:
        raise ValueError("no selection candidates")
    if budget_seconds <= 0:
        raise ValueError(f"the selection budget must be > 0 seconds, got {budget_seconds}")
    k = int(metric.partition("@")[2])
    began, cost, rows = time.perf_counter(), {}, []
    for i, spec in enumerate(specs):
        expected = cost.get(spec.family, max(max(cost.values(), default=0.0), spec.time_budget_seconds))
        elapsed = time.perf_counter() - began
        if i > 0 and elapsed + expected > budget_seconds:
            rows.append(_row(spec, skipped=f"time box: {elapsed:.1f} s used + {expected:.1f} s expected "
                                           f"> {budget_seconds:.0f} s budget"))
        else:
            rows.append(_run(spec, val, k))
            cost[spec.family] = (rows[-1]["fit_seconds"] or 0.0) + (rows[-1]["score_seconds"] or 0.0)
        (on_row or (lambda r: None))(rows[-1])
    _choose(rows, metric)
    return Selection(metric, rows, time.perf_counter() - began, budget_seconds)


def _run(spec: CandidateSpec, val: EvalSplit, k: int) -> dict:
    started = time.perf_counter()
    try:
        model = spec.fit(val)
    except ModelUnavailableError as exc:
        return _row(spec, skipped=f"unavailable: {exc}")
    fitted = time.perf_counter()
    metrics = served_metrics(spec, model, val, k)
    return _row(spec, validation=metrics, fit_seconds=round(fitted - started, 2),
                score_seconds=round(time.perf_counter() - fitted, 2))


def fallback_selection(specs: Sequence[CandidateSpec], metric: str, reason: str) -> Selection:
    """No validation split (e.g. too little training data): every candidate skipped, the first one
    (the production default) chosen."""
    rows = [_row(spec, skipped=f"not run: {reason}") for spec in specs]
    rows[0]["chosen"] = True
    return Selection(check_ranking_metric(metric), rows, 0.0, 0.0)

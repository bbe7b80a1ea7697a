"""Model selection per shop: train small, named configurations of each model family on the training
side of a validation split, score them as they would be served, and pick the best by one metric.

- Candidates (``candidate_specs``): every registered family's named configurations
  (``ModelFamily.configurations``), the production default ``hybrid-default`` first; a family that cannot
  train here (``ModelFamily.unavailable``: a missing optional package) gets the row "unavailable", and one
  whose size guard the catalogue exceeds (``Capabilities.max_items``) the row "too large", never a failure.
- Scoring: every candidate's lists go through the production re-ranking (precompute's boost, stock
  and diversity, then serving's rules: ``recsys.evaluation.reranking``), since whichever wins is
  served that way; the metric (``RECSYS_SELECTION_METRIC``, default ``ndcg@10``) is measured on the
  validation split's truth only.
- Time box: ``hybrid-default`` (the fallback, so there is always a choice) runs first, then the
  others in order; a candidate whose expected cost (the last fit + score of its family, else of any
  candidate, and at least the training time budget of its configuration) would overrun
  ``budget_seconds`` is skipped, and the table says so.
- Choice: the best metric; exact ties go to the secondary metric, then to the earlier candidate.
  Without a usable validation split (too little data), ``fallback_selection`` keeps the default.

``select_model`` is pure: it reads only the validation split it is given (built from training
events by ``recsys.evaluation.protocol.validation_split``), never the test period.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from recsys.evaluation.baselines import ModelUnavailableError
from recsys.evaluation.measure import measure
from recsys.evaluation.models import BaselineConfig, HybridConfig, config_base, fit_family, hybrid_reranker
from recsys.evaluation.protocol import EvalSplit
from recsys.families import DEFAULT_FAMILY, REGISTERED, family_of
from recsys.settings import check_ranking_metric

FAMILIES = tuple(f.name for f in REGISTERED)
DEFAULT_CANDIDATE = "hybrid-default"  # the production default: the first candidate, the fallback


@dataclass(frozen=True)
class CandidateSpec:
    """One named configuration of a family (``ModelFamily.configurations``). ``hybrid`` carries the run's
    training parameters and the re-ranking every candidate is served with; ``baselines`` the per-family
    options; ``tuned`` the values a weekly search found for it (``ModelFamily.with_values``)."""

    name: str
    family: str
    hybrid: HybridConfig
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    tuned: tuple = ()  # ((name, value), ...): hashable

    def __post_init__(self):
        family_of(self.family)  # UnknownFamilyError for a family that is not registered

    def config(self) -> dict:
        """The family's configuration (JSON-able), as the registry will record it."""
        family = family_of(self.family)
        config = family.configurations(config_base(self.hybrid, self.baselines))[self.name]
        return family.with_values(config, dict(self.tuned)) if self.tuned else config

    @property
    def time_budget_seconds(self) -> float:
        """Seconds the configuration itself allows its training (0: none)."""
        budget = getattr(family_of(self.family), "time_budget_seconds", None)
        return float(budget(self.config())) if budget else 0.0

    def fit(self, split: EvalSplit):
        """The model trained on ``split``'s training interactions."""
        return fit_family(self.family, self.config(), split, self.hybrid)


def candidate_specs(base: HybridConfig, baselines: BaselineConfig = BaselineConfig()) -> tuple[CandidateSpec, ...]:
    """Every registered family's named configurations, ``hybrid-default`` (``base``, the production
    configuration) first, then by the families' ``ranks`` (the slowest last: the time box skips them first);
    a configuration equal to an earlier one of its family (``hybrid-nofeatures`` when the defaults are ids
    only) is left out."""
    ranked = []
    for family in REGISTERED:
        for name, config in family.configurations(config_base(base, baselines)).items():
            ranked.append((family.ranks.get(name, 50.0), name, family.name, config))
    out, seen = [], []
    for _, name, fam, config in sorted(ranked, key=lambda r: r[0]):
        if (fam, config) not in seen:
            seen.append((fam, config))
            out.append(CandidateSpec(name, fam, base, baselines))
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
    too_large = family_of(spec.family).capabilities.fits(len(val.products))
    if too_large:  # its size guard: the family cannot hold this shop's catalogue
        return _row(spec, skipped=f"too large: {too_large}")
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

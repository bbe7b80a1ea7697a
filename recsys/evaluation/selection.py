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
  ``budget_seconds`` is not run, and its row says "cut by the time box". A candidate whose own training
  stopped on its time budget while still improving (its best epoch is its last) is a partial fit: its
  row shows its metrics but it is not ranked.
- How sure: every ranked candidate's metric comes with a bootstrap interval over the validation users
  (``bootstrap_intervals``: ``RESAMPLES`` resamples of the users, the same resamples for every
  candidate, seeded by the protocol's seed; the ``LEVEL`` percentile interval).
- Choice (``TIE_RULE``): the leader is the best metric (exact ties: the secondary metric, then the
  earlier candidate). If the LIVE model's family is given and is not the leader's, and its best
  candidate's interval overlaps the leader's, that candidate is kept (the difference is within the
  noise of the validation users, and switching families has a cost); otherwise the leader.
  Without a usable validation split (too little data), ``fallback_selection`` keeps the default.

``select_model`` is pure: it reads only the validation split it is given (built from training
events by ``recsys.evaluation.validation``), never the test period.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.evaluation.baselines import ModelUnavailableError
from recsys.evaluation.measure import measure
from recsys.evaluation.models import BaselineConfig, HybridConfig, config_base, fit_family, hybrid_reranker
from recsys.evaluation.protocol import EvalSplit
from recsys.families import DEFAULT_FAMILY, REGISTERED, family_of
from recsys.settings import check_ranking_metric

FAMILIES = tuple(f.name for f in REGISTERED)
RESAMPLES = 1000  # bootstrap resamples of the validation users
LEVEL = 0.95  # the intervals' coverage
TIE_RULE = ("the best validation metric (exact ties: the secondary metric, then the earlier candidate); when the "
            "LIVE model's family is not the leader's and its best candidate's interval overlaps the leader's, "
            "that candidate is kept")
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


def served_metrics(spec: CandidateSpec, model, split: EvalSplit, k: int, values_of: tuple[str, ...] = ()) -> dict:
    """List metrics at ``k`` of ``model``'s lists after the production re-ranking, on ``split.main``
    (with ``values_of``: ``"per_user"``, those metrics' values per user, see ``measure``)."""
    rerank = hybrid_reranker(split, split.main, spec.hybrid)
    m = measure(model, split.main, k, seed=split.protocol.seed, rerank=rerank, with_curves=False, with_auc=False,
                values_of=values_of)
    return {key: v for key, v in m.items()
            if "@" in key or key in ("coverage", "diversity", "novelty", "users", "per_user")}


def bootstrap_intervals(values: dict[str, np.ndarray], *, seed: int, resamples: int = RESAMPLES,
                        level: float = LEVEL) -> dict[str, tuple[float, float]]:
    """Per candidate, the ``level`` percentile interval of the mean of its per-user ``values`` over
    ``resamples`` resamples of the users; paired: every candidate is resampled with the same users
    (the arrays must be over the same users, in the same order)."""
    if not values:
        return {}
    sizes = {len(v) for v in values.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"paired intervals need the same non-empty users for every candidate, got sizes {sizes}")
    if not 0.0 < level < 1.0 or resamples < 1:
        raise ValueError(f"level must be in (0, 1) and resamples >= 1, got {level}, {resamples}")
    n, rng = sizes.pop(), np.random.default_rng(seed)
    means = {name: np.empty(resamples) for name in values}
    chunk = max(1, 2**22 // n)  # resamples drawn at once (memory bound)
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        for name, v in values.items():
            means[name][start:start + len(idx)] = np.asarray(v, dtype=np.float64)[idx].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    return {name: (float(np.percentile(m, tail)), float(np.percentile(m, 100 - tail))) for name, m in means.items()}


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
    decision: str = ""
    live_family: str | None = None

    @property
    def chosen(self) -> dict:
        return next(r for r in self.rows if r["chosen"])

    def as_dict(self) -> dict:
        return {"metric": self.metric, "secondary_metric": secondary_metric(self.metric), "chosen": self.chosen["name"],
                "seconds": round(self.seconds, 1), "budget_seconds": self.budget_seconds, "candidates": self.rows,
                "decision": self.decision, "live_family": self.live_family, "tie_rule": TIE_RULE, "level": LEVEL,
                "resamples": RESAMPLES}


def _row(spec: CandidateSpec, **values) -> dict:
    return {"family": spec.family, "name": spec.name, "config": spec.config(), "validation": None,
            "interval": None,
            "fit_seconds": None, "score_seconds": None, "chosen": False, "skipped": None, **values}


def _overlap(a: dict, b: dict) -> bool:
    return a["interval"] is not None and b["interval"] is not None \
        and a["interval"][0] <= b["interval"][1] and b["interval"][0] <= a["interval"][1]


def _choose(rows: list[dict], metric: str, live_family: str | None = None) -> str:
    """Mark the chosen row (``TIE_RULE``) and say why. Ranked: rows with a validation and not skipped."""
    ranked = [r for r in rows if r["validation"] is not None and not r["skipped"]]
    if not ranked:
        raise ModelUnavailableError("no selection candidate could run")
    second = secondary_metric(metric)
    order = {id(r): i for i, r in enumerate(rows)}
    key = lambda r: (r["validation"][metric], r["validation"].get(second, 0.0), -order[id(r)])  # noqa: E731
    leader = max(ranked, key=key)
    live = [r for r in ranked if r["family"] == live_family]
    kept = max(live, key=key) if live and leader["family"] != live_family else None
    if kept is not None and _overlap(kept, leader):
        kept["chosen"] = True
        return (f"kept the LIVE family {live_family}: {kept['name']} ({metric} {kept['validation'][metric]:.4f}) and "
                f"the leader {leader['name']} ({leader['validation'][metric]:.4f}) have overlapping {LEVEL:.0%} "
                "intervals")
    leader["chosen"] = True
    if kept is not None:
        return (f"{leader['name']} leads by {metric} {leader['validation'][metric]:.4f}; the LIVE family {live_family}'s "
                f"best ({kept['name']} {kept['validation'][metric]:.4f}) is outside its {LEVEL:.0%} interval")
    suffix = f" (the LIVE family {live_family})" if live_family == leader["family"] else ""
    return f"{leader['name']} leads by {metric} {leader['validation'][metric]:.4f}{suffix}"


def select_model(val: EvalSplit, specs: Sequence[CandidateSpec], *, metric: str = "ndcg@10",
                 budget_seconds: float = 900.0, on_row: Callable[[dict], None] | None = None,
                 live_family: str | None = None) -> Selection:
    """Train and score every candidate of ``specs`` on the validation split ``val`` within the budget;
    ``live_family`` (the LIVE model's family) for the tie rule."""
    metric = check_ranking_metric(metric)
    if not specs:
        raise ValueError("no selection candidates")
    if budget_seconds <= 0:
        raise ValueError(f"the selection budget must be > 0 seconds, got {budget_seconds}")
    k = int(metric.partition("@")[2])
    began, cost, rows, values = time.perf_counter(), {}, [], {}
    for i, spec in enumerate(specs):
        expected = cost.get(spec.family, max(max(cost.values(), default=0.0), spec.time_budget_seconds))
        elapsed = time.perf_counter() - began
        if i > 0 and elapsed + expected > budget_seconds:
            rows.append(_row(spec, skipped=f"cut by the time box: {elapsed:.1f} s used + {expected:.1f} s expected "
                                           f"> {budget_seconds:.0f} s budget: not run"))
        else:
            row, per_user = _run(spec, val, k, metric)
            rows.append(row)
            if per_user is not None and not row["skipped"]:
                values[spec.name] = per_user
            cost[spec.family] = (rows[-1]["fit_seconds"] or 0.0) + (rows[-1]["score_seconds"] or 0.0)
        (on_row or (lambda r: None))(rows[-1])
    intervals = bootstrap_intervals(values, seed=val.protocol.seed)
    for row in rows:
        if row["name"] in intervals:
            row["interval"] = [round(x, 6) for x in intervals[row["name"]]]
    decision = _choose(rows, metric, live_family)
    return Selection(metric, rows, time.perf_counter() - began, budget_seconds, decision, live_family)


def partial_fit(model) -> str | None:
    """Why a fitted model is a partial fit: its training stopped on its time budget while still improving
    (best epoch == last epoch), else None."""
    summary = getattr(model, "training_summary", None) or {}
    if summary.get("stopped") == "time_budget" and summary.get("best_epoch") == summary.get("epochs"):
        return (f"cut by its training time budget after {summary['epochs']} epoch(s), still improving: "
                "a partial fit, not ranked")
    return None


def _run(spec: CandidateSpec, val: EvalSplit, k: int, metric: str) -> tuple[dict, np.ndarray | None]:
    too_large = family_of(spec.family).capabilities.fits(len(val.products))
    if too_large:  # its size guard: the family cannot hold this shop's catalogue
        return _row(spec, skipped=f"too large: {too_large}"), None
    started = time.perf_counter()
    try:
        model = spec.fit(val)
    except ModelUnavailableError as exc:
        return _row(spec, skipped=f"unavailable: {exc}"), None
    fitted = time.perf_counter()
    metrics = served_metrics(spec, model, val, k, values_of=(metric,))
    per_user = metrics.pop("per_user")[metric]
    return _row(spec, validation=metrics, skipped=partial_fit(model), fit_seconds=round(fitted - started, 2),
                score_seconds=round(time.perf_counter() - fitted, 2)), per_user


def fallback_selection(specs: Sequence[CandidateSpec], metric: str, reason: str) -> Selection:
    """No validation split (e.g. too little training data): every candidate skipped, the first one
    (the production default) chosen."""
    rows = [_row(spec, skipped=f"not run: {reason}") for spec in specs]
    rows[0]["chosen"] = True
    return Selection(check_ranking_metric(metric), rows, 0.0, 0.0, f"kept {rows[0]['name']}: {reason}")

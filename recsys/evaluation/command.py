"""``python -m recsys evaluate``: from parsed arguments to the written report.

``recsys.cli.cmd_evaluate`` calls :func:`evaluate_command`; bad input (a wrong
column mapping, an empty test set, an unknown model) ends with a one-line message
on stderr and exit status 2.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sys
from pathlib import Path

from recsys.evaluation.errors import EvaluationError

DEFAULT_OUT_DIR = Path("bench/results")


def parse_when(value: str) -> dt.datetime:
    """``YYYY-MM-DD`` or an ISO date-time; naive values are UTC."""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise EvaluationError(f"--split-date: not a YYYY-MM-DD date or ISO date-time: {value!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _names(value: str | None, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if not names:
        raise EvaluationError(f"{what}: empty list")
    return names


def hybrid_config(args, settings):
    """Production configuration from the settings, or the one in ``--hybrid-config`` (a tuned one)."""
    from recsys.evaluation.models import HybridConfig

    if args.hybrid_config:
        data = json.loads(Path(args.hybrid_config).read_text())
        if "models" in data:  # a previous run's result: its tuned (else used) hybrid configuration
            data = (data.get("tuning") or {}).get("best") or data["config"]["hybrid"]
        config = HybridConfig.from_dict(data, settings)
    else:
        config = HybridConfig.from_settings(settings)
    overrides = {k: v for k, v in (("seed", args.seed), ("threads", args.threads)) if v is not None}
    return dataclasses.replace(config, params=dataclasses.replace(config.params, **overrides))


def _metric(name: str) -> str:
    from recsys.settings import check_ranking_metric

    try:
        return check_ranking_metric(name)
    except ValueError as exc:
        raise EvaluationError(f"--selection-metric: {exc}") from exc


def _min_users(args, settings) -> int:
    value = getattr(args, "selection_min_users", None)
    if value is None:
        return settings.selection_min_users
    if value < 1:
        raise EvaluationError(f"--selection-min-users must be >= 1, got {value}")
    return value


def _split_logs(args, logs, protocol):
    """The logs to split and the cut-off, from ``--protocol`` and the split options."""
    from recsys.evaluation.protocol import PER_CUSTOMER, Cutoff, choose_cutoff, per_customer_logs

    if args.protocol == PER_CUSTOMER:
        if args.test_file or args.split_date or args.test_days:
            raise EvaluationError("--protocol per-customer splits each customer's own events: "
                                  "no --test-file, --split-date or --test-days")
        fraction = 0.2 if args.test_fraction is None else args.test_fraction
        return per_customer_logs(logs, fraction, protocol.positive_events), Cutoff(PER_CUSTOMER, str(fraction), None)
    if args.test_file:
        return logs, Cutoff("test-file", str(args.test_file), None)
    split_at = parse_when(args.split_date) if args.split_date else None
    return logs, choose_cutoff(logs.events, split_at=split_at, test_days=args.test_days,
                               test_fraction=args.test_fraction)


def run_basket(args) -> tuple[dict, dict]:
    """``--protocol basket``: read, split at the time cut-off, measure the basket rows, write."""
    from recsys.evaluation.basket import ROWS, evaluate_baskets, write_basket_outputs
    from recsys.evaluation.logs import read_logs
    from recsys.settings import get_settings

    if args.tune or args.hybrid_config:
        raise EvaluationError("--protocol basket measures the co-purchase lists: no --tune or --hybrid-config")
    logs = read_logs(args.dataset, args.format, args.columns, args.test_file)
    seed = get_settings().seed if args.seed is None else args.seed
    _, cutoff = _split_logs(args, logs, None)
    result = evaluate_baskets(logs, cutoff, k=args.k, seed=seed, train_days=args.train_days,
                              rows=_names(args.models, "--models") or ROWS)
    out = Path(args.json) if args.json else DEFAULT_OUT_DIR / f"{Path(args.dataset).stem}_basket.json"
    return result, write_basket_outputs(result, out)


def run(args) -> tuple[dict, dict]:
    """Read, split, evaluate, write; returns the result and the written paths."""
    from recsys.evaluation.logs import read_logs
    from recsys.evaluation.models import MODEL_NAMES, BaselineConfig
    from recsys.families import options_from_settings
    from recsys.evaluation.protocol import POSITIVE_EVENTS, Protocol, build_eval_split
    from recsys.evaluation.report import write_outputs
    from recsys.evaluation.runner import RunOptions, run_evaluation
    from recsys.settings import get_settings

    settings = get_settings()
    hybrid = hybrid_config(args, settings)
    protocol = Protocol(k=args.k, positive_events=_names(args.positive_events, "--positive-events") or POSITIVE_EVENTS,
                        cold_max_items=args.cold_max_items, train_days=args.train_days, seed=hybrid.params.seed,
                        exclude_seen=args.exclude_seen or settings.exclude_seen)
    metric = settings.selection_metric if args.selection_metric is None else _metric(args.selection_metric)
    # each family's options from the settings (a training time budget), as in the nightly run
    baselines = BaselineConfig(trending_days=settings.trending_days, options=options_from_settings(settings))
    options = RunOptions(models=_names(args.models, "--models") or MODEL_NAMES, hybrid=hybrid, baselines=baselines,
                         tune_minutes=args.tune_minutes if args.tune else None, progress=not args.quiet,
                         selection=not args.no_selection, selection_metric=metric,
                         selection_budget_seconds=args.selection_budget or settings.selection_budget_seconds,
                         selection_min_users=_min_users(args, settings))
    logs = read_logs(args.dataset, args.format, args.columns, args.test_file)
    split = build_eval_split(*_split_logs(args, logs, protocol), protocol)
    result = run_evaluation(split, options)
    out = Path(args.json) if args.json else DEFAULT_OUT_DIR / f"{Path(args.dataset).stem}.json"
    return result, write_outputs(result, out, plots=not args.no_plots)


def evaluate_command(args) -> int:
    from recsys.evaluation.report import main_table, selection_table

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    from recsys.evaluation.basket import BASKET, basket_table

    try:
        result, paths = run_basket(args) if args.protocol == BASKET else run(args)
    except (EvaluationError, ValueError, FileNotFoundError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    print("\n".join(basket_table(result) if args.protocol == BASKET else main_table(result)))
    if result.get("selection"):
        print("\n".join(["", *selection_table(result)]))
    if result.get("tuning"):
        print("tuned hybrid configuration:", json.dumps(result["tuning"]["best"]))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0

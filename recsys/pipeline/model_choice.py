"""The nightly model choice: select a family on the training window's own validation split, then
train the winner on the whole window (``train_model``) and register it with the selection's table.

For hold-out day ``D`` the training window is ``[D - window_days + 1, D)``. Its newest
``RECSYS_SELECTION_VALIDATION_DAYS`` days are the validation period: every candidate of
``RECSYS_SELECTION_CANDIDATES`` is trained on the window's days before them and scored on them as
served (``recsys.evaluation.selection.select_model``, time-boxed by
``RECSYS_SELECTION_BUDGET_SECONDS``). Day ``D`` itself, which evaluate scores the new model on
against LIVE, is never read here. A family pinned by the run's params skips the selection; a window
without validation users keeps the first candidate (the production default).

The ``sequential`` candidate is the session model with the settings' time budget, threads and seed
(``recsys.families.sequential.store.config_from_settings``), scored on validation like the others; chosen (or
pinned), it is trained on the whole window and registered with ``model_type`` ``SEQUENTIAL`` through
the family registry (``recsys.families.registry``), and evaluate, promote, publish and precompute take it
like any model. The DAG's separate sequential branch (``recsys.flows.sequential``) still trains its own
model for an A/B test; neither reuses the other's row on a re-run (their params differ in layout).

The table (each candidate's family, configuration, validation metrics, seconds, chosen/skipped) is
stored in the registry row's ``params["selection"]`` (written once at registration; ``metrics`` is
replaced by evaluate) and written to the task log. ``params["selection_key"]`` (pinned family,
candidate list, metric) is part of what a re-run must match to reuse the trained model.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from sqlalchemy import Engine, select

from recsys.artifacts import ArtifactStore
from recsys.constants import (
    COL_EVENT_TYPE, COL_ITEM, COL_PRICE, COL_TIMESTAMP, COL_USER, MS_PER_DAY, SELECTION_CANDIDATES,
)
from recsys.db.models import UserEvent
from recsys.evaluation.errors import EvaluationError
from recsys.evaluation.logs import EventLogs
from recsys.evaluation.models import BaselineConfig, HybridConfig
from recsys.evaluation.protocol import Cutoff, EvalSplit, Protocol, build_eval_split
from recsys.evaluation.selection import (
    CandidateSpec, Selection, candidate_specs, fallback_selection, select_model,
)
from recsys.families.hybrid.fit import TrainParams
from recsys.data.frames import load_products, load_users
from recsys.pipeline.train import train_model
from recsys.families.sequential.store import config_from_settings
from recsys.settings import Settings
from recsys.timeutil import day_start_ms

log = logging.getLogger(__name__)
EVENT_COLUMNS = (COL_USER, COL_ITEM, COL_EVENT_TYPE, COL_TIMESTAMP, COL_PRICE)


def load_window_events(engine: Engine, start_day: dt.date, end_day_exclusive: dt.date) -> pd.DataFrame:
    """The raw events of ``[start_day, end_day_exclusive)`` with a user and a product."""
    e = UserEvent
    stmt = select(e.user_id, e.product_id, e.event_type, e.timestamp, e.price).where(
        e.timestamp >= day_start_ms(start_day), e.timestamp < day_start_ms(end_day_exclusive),
        e.user_id.is_not(None), e.product_id.is_not(None))
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(stmt).all(), columns=list(EVENT_COLUMNS))
    return frame.astype({COL_USER: "int64", COL_ITEM: "int64", COL_TIMESTAMP: "int64", COL_PRICE: "float64"})


def validation_of(logs: EventLogs, day: dt.date, validation_days: int, exclude_seen: str) -> EvalSplit:
    """The window's events split at the start of its newest ``validation_days`` days (``EvaluationError``
    when no user has validation truth)."""
    cut = day_start_ms(day) - validation_days * MS_PER_DAY
    return build_eval_split(logs, Cutoff("validation", f"last {validation_days} day(s) of the training window", cut),
                            Protocol(exclude_seen=exclude_seen))


def nightly_specs(settings: Settings, params: TrainParams, tuned: dict | None = None,
                  names: tuple[str, ...] | None = None) -> tuple[CandidateSpec, ...]:
    """The candidates ``names`` (default ``RECSYS_SELECTION_CANDIDATES``), in that order, with the run's
    training params and the stored tuned configurations (``tuned``: ``{candidate name: config}``,
    ``recsys.pipeline.tuning``)."""
    base = HybridConfig.from_settings(settings, window_days=params.window_days, epochs=params.epochs,
                                      loss=params.loss)
    baselines = BaselineConfig(sequential=config_from_settings(settings).as_dict())
    specs = {spec.name: spec for spec in candidate_specs(base, baselines)}
    if tuned:
        from recsys.pipeline.tuning import apply_tuned

        specs = {name: apply_tuned(spec, tuned.get(name)) for name, spec in specs.items()}
    return tuple(specs[name] for name in (names or settings.selection_candidates) if name in specs)


def pinned_selection(specs: tuple[CandidateSpec, ...], family: str, metric: str) -> tuple[Selection, CandidateSpec]:
    """A family pinned by the run: its first candidate (the family's default configuration), nothing run."""
    spec = next((s for s in specs if s.family == family), None)
    if spec is None:
        raise ValueError(f"cannot pin model family {family!r}: known {sorted({s.family for s in specs})}")
    return fallback_selection([spec], metric, f"family pinned to {family!r}"), spec


def selection_table(selection: dict) -> str:
    """The candidates as a text table for the task log."""
    metric, second = selection["metric"], selection["secondary_metric"]
    lines = [f"model selection by {metric} ({selection['seconds']} s of {selection['budget_seconds']} s):",
             f"{'candidate':<20} {'family':<11} {metric:>10} {second:>12} {'fit s':>7}  note"]
    for row in selection["candidates"]:
        val = row["validation"] or {}
        fmt = lambda v: f"{v:.4f}" if isinstance(v, (int, float)) else "-"  # noqa: E731
        note = "CHOSEN" if row["chosen"] else (row["skipped"] or "")
        lines.append(f"{row['name']:<20} {row['family']:<11} {fmt(val.get(metric)):>10} {fmt(val.get(second)):>12} "
                     f"{fmt(row['fit_seconds']):>7}  {note}")
    return "\n".join(lines)


def _validation(engine: Engine, day: dt.date, params: TrainParams, settings: Settings) -> tuple[EvalSplit | None, str]:
    first, _ = params.train_days(day)
    logs = EventLogs(load_window_events(engine, first, day), None, load_users(engine), load_products(engine), {})
    try:
        val = validation_of(logs, day, settings.selection_validation_days, settings.exclude_seen)
    except EvaluationError as exc:
        log.warning("no validation split for %s: %s", day, exc)
        return None, str(exc)
    return val, val.info["split"]["value"]


def choose(engine: Engine, day: dt.date, params: TrainParams, settings: Settings, *,
           pinned: str | None = None) -> tuple[dict, CandidateSpec, dict | None]:
    """The selection (as a dict), the chosen candidate and the tuning record in effect
    (``recsys.pipeline.tuning``: the stored one, or a search run now when one is due)."""
    from recsys.pipeline.tuning import is_due, latest_record, search_leading, tuned_configs

    metric = settings.selection_metric
    names = SELECTION_CANDIDATES if pinned else tuple(settings.selection_candidates)
    base = nightly_specs(settings, params, None, names)
    tuning = latest_record(engine, day, "tuning")
    due = not pinned and is_due(tuning, day, settings.tuning_interval_days)
    val, described = None, "not needed"
    if not pinned and (len(base) > 1 or due):
        val, described = _validation(engine, day, params, settings)
    if due and val is not None:
        tuning = search_leading(engine, day, val, base, settings)
    specs = nightly_specs(settings, params, tuned_configs(tuning), names)
    if pinned:
        selection, spec = pinned_selection(specs, pinned, metric)
        return {**selection.as_dict(), "validation_split": None, "validation_users": 0}, spec, tuning
    if len(specs) == 1 or val is None:  # nothing to choose between, or nothing to choose on
        reason = "the only candidate (RECSYS_SELECTION_CANDIDATES)" if len(specs) == 1 else described
        selection = fallback_selection(specs, metric, reason)
        return {**selection.as_dict(), "validation_split": described, "validation_users": 0}, specs[0], tuning
    users = len(val.main.users)
    log.info("model selection for %s on %s (%d users, %d candidates, budget %.0f s)", day, described, users,
             len(specs), settings.selection_budget_seconds)
    selection = select_model(val, specs, metric=metric, budget_seconds=settings.selection_budget_seconds,
                             on_row=lambda r: log.info("candidate %s: %s", r["name"], r["skipped"] or r["validation"]))
    chosen = next(s for s in specs if s.name == selection.chosen["name"])
    return {**selection.as_dict(), "validation_split": described, "validation_users": users}, chosen, tuning


def selection_key(settings: Settings, pinned: str | None) -> dict:
    """What, besides the training params, a re-run must share to reuse a model trained for the day."""
    return {"pinned": pinned, "candidates": list(settings.selection_candidates), "metric": settings.selection_metric}


def train_chosen(engine: Engine, store: ArtifactStore, day: dt.date, params: TrainParams, settings: Settings, *,
                 pinned: str | None = None) -> dict:
    """Select (or take the pinned family), train the chosen candidate on the whole window, register it."""
    selection, spec, tuning = choose(engine, day, params, settings, pinned=pinned)
    log.info("%s", selection_table(selection))
    config = spec.config()  # what the family trains with; the row's top-level params stay the run's (re-runs)
    record = {"selection": selection, "selection_key": selection_key(settings, pinned), "candidate": spec.name,
              "tuning": tuning}
    out = train_model(engine, store, day, params, family=spec.family, config=config, record=record)
    return {**out, "candidate": spec.name, "selection": {r["name"]: (r["validation"] or {}).get(selection["metric"])
                                                         for r in selection["candidates"]}}

"""The nightly model choice: select a family on the training window's own validation split, then
train the winner on the whole window (``train_model``) and register it with the selection's table.

For hold-out day ``D`` the training window is ``[D - window_days + 1, D)``. Its newest
``RECSYS_SELECTION_VALIDATION_DAYS`` days are the validation period, widened (doubling, up to a third of
the window) while they hold fewer than ``RECSYS_SELECTION_MIN_USERS`` users (or every eligible user of a
smaller shop), then switched to each user's newest events inside the window
(``recsys.evaluation.validation``): every candidate of
``RECSYS_SELECTION_CANDIDATES`` (empty: every registered family's candidates, ``recsys.families``) is
trained on the window's days before them and scored on them as served
(``recsys.evaluation.selection.select_model``, time-boxed by ``RECSYS_SELECTION_BUDGET_SECONDS``). Day
``D`` itself, which evaluate scores the new model on against LIVE, is never read here. A family pinned by
the run's params skips the selection; a window without validation users keeps the first candidate (the
production default). The LIVE model's family is handed to the choice: it is kept when its best candidate's
bootstrap interval overlaps the leader's (``recsys.evaluation.selection.TIE_RULE``). Each family's configuration takes its options from the settings
(``ModelFamily.options_from_settings``: a training time budget). The chosen candidate is trained on the
whole window and registered with its family's ``model_type``; evaluate, the release and precompute take it
like any model.

Weekly tuning: when the newest tuning record in the registry (on a model row trained for a day up to the
processed one) is ``RECSYS_TUNING_INTERVAL_DAYS`` days old or more, or there is none (0 switches tuning
off), the ``RECSYS_TUNING_FAMILIES`` best families of the last selection that have a search space are
searched (``recsys.evaluation.tuning.search``) on the same validation split, each for an equal share of
``RECSYS_TUNING_BUDGET_SECONDS``; the record (``params["tuning"]``: ``{"searched_on", "metric",
"candidates": {name: {"config", "validation", "default_validation", "trials"}}}``) is carried to every
later model's row until the next search, and its improvements configure the candidates.

The table (the validation split's protocol, users and the windows tried; each candidate's family,
configuration, validation metrics and interval, seconds, chosen/skipped; the decision) is
stored in the registry row's ``params["selection"]`` (written once at registration; ``metrics`` is
replaced by evaluate) and written to the task log. ``params["selection_key"]`` (pinned family,
candidate list, metric) is part of what a re-run must match to reuse the trained model.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import Engine, select

from recsys import registry
from recsys.artifacts import ArtifactStore
from recsys.data.frames import load_products, load_users, load_window_events
from recsys.db.models import RecommendationModel
from recsys.evaluation.errors import EvaluationError
from recsys.evaluation.logs import EventLogs
from recsys.evaluation.models import BaselineConfig, HybridConfig
from recsys.evaluation.protocol import EvalSplit, Protocol
from recsys.evaluation.report import interval_text, validation_line
from recsys.evaluation.selection import (
    CandidateSpec, Selection, candidate_specs, fallback_selection, select_model,
)
from recsys.evaluation.tuning import apply_tuned, leading, search
from recsys.evaluation.validation import TIME, Shape, validation_split
from recsys.families import TrainParams, options_from_settings
from recsys.pipeline.train import train_model
from recsys.settings import Settings
from recsys.timeutil import day_start_ms

log = logging.getLogger(__name__)


def validation_of(logs: EventLogs, day: dt.date, settings: Settings) -> tuple[EvalSplit, dict]:
    """The window's validation split for hold-out ``day`` (``recsys.evaluation.validation``): its newest
    ``selection_validation_days`` days, widened (then switched to each user's newest events) until it holds
    ``selection_min_users`` users or every eligible one; ``EvaluationError`` when no user has validation truth."""
    return validation_split(logs, day_start_ms(day), Shape(TIME, days=settings.selection_validation_days),
                            Protocol(exclude_seen=settings.exclude_seen), settings.selection_min_users)


def live_family(engine: Engine) -> str | None:
    """The family of the LIVE model (the tie rule keeps it when the leader is not clearly better), or None."""
    live = registry.get_live(engine)
    if live is None:
        return None
    return (live.params or {}).get("family") or (live.model_type or "").lower() or None


def nightly_specs(settings: Settings, params: TrainParams, tuned: dict | None = None,
                  names: tuple[str, ...] | None = None) -> tuple[CandidateSpec, ...]:
    """The candidates ``names`` (default every registered candidate), in that order, with the run's training
    params, the families' options from the settings and the stored tuned configurations (``tuned``:
    ``{candidate name: config}``); ``ValueError`` naming an unknown candidate."""
    base = HybridConfig.from_settings(settings, window_days=params.window_days, epochs=params.epochs,
                                      loss=params.loss)
    baselines = BaselineConfig(options=options_from_settings(settings))
    specs = {spec.name: spec for spec in candidate_specs(base, baselines)}
    if tuned:
        specs = {name: apply_tuned(spec, tuned.get(name)) for name, spec in specs.items()}
    wanted = names or tuple(specs)
    unknown = [name for name in wanted if name not in specs]
    if unknown:
        raise ValueError(f"RECSYS_SELECTION_CANDIDATES names unknown candidate(s) {unknown}; known: {list(specs)}")
    return tuple(specs[name] for name in wanted)


def pinned_selection(specs: tuple[CandidateSpec, ...], family: str, metric: str) -> tuple[Selection, CandidateSpec]:
    """A family pinned by the run: its first candidate (the family's default configuration), nothing run."""
    spec = next((s for s in specs if s.family == family), None)
    if spec is None:
        raise ValueError(f"cannot pin model family {family!r}: known {sorted({s.family for s in specs})}")
    return fallback_selection([spec], metric, f"family pinned to {family!r}"), spec


def selection_table(selection: dict) -> str:
    """The candidates as a text table for the task log: how the validation split was carved and on how
    many users, each candidate's metric with its bootstrap interval, and why the chosen one was chosen."""
    metric, second = selection["metric"], selection["secondary_metric"]
    level = f"{selection.get('level', 0.95):.0%}"
    lines = [f"model selection by {metric} ({selection['seconds']} s of {selection['budget_seconds']} s):",
             validation_line(selection.get("validation") or selection.get("validation_split")),
             f"{'candidate':<20} {'family':<11} {metric:>10} {level + ' interval':>18} {second:>12} {'fit s':>7}  note"]
    for row in selection["candidates"]:
        val = row["validation"] or {}
        fmt = lambda v: f"{v:.4f}" if isinstance(v, (int, float)) else "-"  # noqa: E731
        interval = interval_text(row).replace("–", "-")
        note = "CHOSEN" if row["chosen"] else (row["skipped"] or "")
        lines.append(f"{row['name']:<20} {row['family']:<11} {fmt(val.get(metric)):>10} {interval:>18} "
                     f"{fmt(val.get(second)):>12} {fmt(row['fit_seconds']):>7}  {note}")
    lines.append(f"choice: {selection.get('decision') or selection['chosen']}")
    return "\n".join(lines)


def _validation(engine: Engine, day: dt.date, params: TrainParams, settings: Settings) -> tuple[EvalSplit | None, dict]:
    first, _ = params.train_days(day)
    logs = EventLogs(load_window_events(engine, first, day), None, load_users(engine), load_products(engine), {})
    try:
        return validation_of(logs, day, settings)
    except EvaluationError as exc:
        log.warning("no validation split for %s: %s", day, exc)
        return None, {"protocol": None, "description": str(exc), "users": 0, "min_users": settings.selection_min_users}


def _stored(selection: Selection, described: dict | None) -> dict:
    """The selection as stored on the registry row and shown by ``GET /models/status``."""
    described = described or {"protocol": None, "description": "not needed", "users": 0}
    return {**selection.as_dict(), "validation_split": described["description"], "validation_users": described["users"],
            "validation": described}


def choose(engine: Engine, day: dt.date, params: TrainParams, settings: Settings, *,
           pinned: str | None = None) -> tuple[dict, CandidateSpec, dict | None]:
    """The selection (as a dict), the chosen candidate and the tuning record in effect
    (``recsys.pipeline.tuning``: the stored one, or a search run now when one is due)."""
    metric = settings.selection_metric
    names = None if pinned else (tuple(settings.selection_candidates) or None)
    base = nightly_specs(settings, params, None, names)
    tuning = latest_record(engine, day, "tuning")
    due = not pinned and is_due(tuning, day, settings.tuning_interval_days)
    val, described = None, None
    if not pinned and (len(base) > 1 or due):
        val, described = _validation(engine, day, params, settings)
    if due and val is not None:
        tuning = search_leading(engine, day, val, base, settings)
    specs = nightly_specs(settings, params, tuned_configs(tuning), names)
    if pinned:
        selection, spec = pinned_selection(specs, pinned, metric)
        return {**_stored(selection, None), "validation_split": None}, spec, tuning
    if len(specs) == 1 or val is None:  # nothing to choose between, or nothing to choose on
        reason = "the only candidate (RECSYS_SELECTION_CANDIDATES)" if len(specs) == 1 else described["description"]
        return _stored(fallback_selection(specs, metric, reason), described), specs[0], tuning
    live = live_family(engine)
    log.info("model selection for %s on %s (%d users; %s; %d candidates, budget %.0f s, LIVE family %s)", day,
             described["description"], described["users"], described["reason"], len(specs),
             settings.selection_budget_seconds, live)
    selection = select_model(val, specs, metric=metric, budget_seconds=settings.selection_budget_seconds,
                             on_row=lambda r: log.info("candidate %s: %s", r["name"], r["skipped"] or r["validation"]),
                             live_family=live)
    chosen = next(s for s in specs if s.name == selection.chosen["name"])
    return _stored(selection, described), chosen, tuning


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


# --- weekly tuning (the search itself: recsys.evaluation.tuning.search) ---
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

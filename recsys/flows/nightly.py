"""The nightly run, one function per Airflow task of ``dags/recsys_nightly.py``.

Each function receives ready clients, the processed day and the run's params
(the DAG's trigger form), calls the step modules and returns a small dict for
XCom that names the processed ``day`` (ISO format), so the next task reads the
day from what its upstream produced (``steps.day_of``) instead of recomputing
it. This is where I/O and decisions meet; the DAG file is only wiring.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass

from recsys.flows.challenger import evaluate_sequential, train_sequential  # the DAG's challenger branch
from recsys.pipeline.steps import Skip, recorded, step
from recsys.settings import Settings, get_settings

__all__ = ["RunParams", "Skip", "evaluate_sequential", "train_sequential"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunParams:
    """The manual-trigger form of the nightly DAG, with the settings as defaults."""

    window_days: int
    epochs: int
    loss: str
    force_promotion: bool
    dry_run: bool
    promotion_policy: str
    family: str | None = None  # pin a model family (recsys.families.registry); None = model selection
    challenger_candidate: bool = False  # the challenger branch's model waits as a CANDIDATE whatever the gate says

    @classmethod
    def from_params(cls, params: dict | None, settings: Settings | None = None) -> "RunParams":
        settings = settings or get_settings()
        params = {k: v for k, v in (params or {}).items() if v is not None}
        return cls(
            window_days=int(params.get("window_days", settings.training_window_days)),
            epochs=int(params.get("epochs", settings.epochs)),
            loss=str(params.get("loss", settings.loss)),
            force_promotion=bool(params.get("force_promotion", False)),
            dry_run=bool(params.get("dry_run", False)),
            promotion_policy=str(params.get("promotion_policy", settings.promotion_policy)),
            family=_family(params.get("family")),
            challenger_candidate=bool(params.get("challenger_candidate", False)),
        )


def _family(value) -> str | None:
    """A pinned family from the trigger form: empty or ``auto`` means model selection."""
    from recsys.families import names

    if value in (None, "", "auto"):
        return None
    if value not in names():
        raise ValueError(f"family must be 'auto' or one of {list(names())}, not {value!r}")
    return str(value)


def log_params(day: dt.date, params: dict | None) -> RunParams:
    """The run's effective params (trigger form / ``--conf`` over the settings), written to the task log."""
    run = RunParams.from_params(params)
    log.info("processing %s with params %s", day, asdict(run))
    return run


def extract(engine, store, day: dt.date, params: dict | None = None) -> dict:
    from recsys.pipeline.extract import extract_day

    log_params(day, params)
    return extract_day(engine, store, day)


def validate(engine, store, day: dt.date) -> dict:
    from recsys.pipeline.validate import validate_day

    return {**validate_day(engine, store, day, get_settings()), "day": day.isoformat()}


@recorded(step("train"))
def train(engine, store, day: dt.date, params: dict | None) -> dict:
    """Select a family on the window's validation split (or take the pinned one), train it for ``day`` and
    register it; a re-run with the same params reuses the model already trained for it."""
    from recsys import registry
    from recsys.families import TrainParams, family_of
    from recsys.pipeline.model_choice import selection_key, train_chosen

    run = log_params(day, params)
    settings = get_settings()
    train_params = TrainParams.from_settings(settings, window_days=run.window_days, epochs=run.epochs, loss=run.loss)
    key = {**asdict(train_params), "selection_key": selection_key(settings, run.family)}
    existing = registry.find_trained(engine, day, key)
    if existing is not None and family_of(existing.model_type).saved(store, existing.model_id):
        log.info("re-run for %s: reusing model %s trained with the same params", day, existing.model_id)
        return {"model_id": existing.model_id, "artifact_uri": existing.artifact_uri,
                "samples": existing.training_samples_count, "reused": True, "day": day.isoformat()}
    return {**train_chosen(engine, store, day, train_params, settings, pinned=run.family),
            "day": day.isoformat()}


@recorded(step("evaluate"))
def evaluate(engine, store, day: dt.date, model_id: str) -> dict:
    from recsys.evaluation.gate import evaluate_candidate

    metrics = evaluate_candidate(engine, store, day, model_id, settings=get_settings())
    # XCom carries the headline numbers only; the full metrics are on the registry row
    return {
        "model_id": model_id,
        "day": day.isoformat(),
        **{f"{name}_ndcg@10": (m or {}).get("ndcg@10") for name, m in metrics.items() if name != "protocol"},
    }


def data_drift(engine, store, day: dt.date) -> dict:
    """The day's events against the days before (``drift/date=D/report.html``); records its own step."""
    from recsys.drift.report import drift_report

    return drift_report(engine, store, day, get_settings())


def output_drift(engine, store, day: dt.date, model_id: str) -> dict:
    """The new model's lists against those of the model that was LIVE when it was evaluated (read from
    its metrics, so the comparison holds whether or not promotion has already run); records its own step."""
    from recsys import registry
    from recsys.drift.report import output_drift as compare_outputs

    protocol = (registry.get_model(engine, model_id).metrics or {}).get("protocol") or {}
    return compare_outputs(engine, store, day, model_id, live_model_id=protocol.get("live_model_id"),
                           settings=get_settings())


@recorded(step("promote_or_archive"))
def promote_or_archive(engine, day: dt.date, model_id: str, params: dict | None) -> dict:
    """The gate's decision (``release.decide``): ``promoted`` (made LIVE by this run's ``switch``, after its
    lists are written), ``candidate`` (the ``ab_test`` policy: an A/B test starts) or ``archived``."""
    from recsys.pipeline import release

    run = RunParams.from_params(params)
    if run.dry_run and _is_live(engine, model_id):  # train re-used the LIVE model (same day, same params)
        return {"decision": "kept", "model_id": model_id, "reason": "dry run: the re-used model is LIVE, left as it is",
                "dry_run": True, "day": day.isoformat()}
    if run.dry_run:
        from recsys import registry

        registry.archive(engine, model_id, reason="dry run: evaluated, never promoted")
        return {"decision": "archived", "model_id": model_id, "reason": "dry run", "dry_run": True,
                "day": day.isoformat()}
    decision = release.decide(engine, model_id, margin=get_settings().promotion_margin,
                              force=run.force_promotion, policy=run.promotion_policy)
    if decision["decision"] == release.DECISION_CANDIDATE:  # its arm is made ready by publish, next
        decision = {**decision, **_start_ab_test(engine, model_id, decision.get("live_model_id"))}
    return {"model_id": model_id, "dry_run": False, **decision, "day": day.isoformat()}


def _is_live(engine, model_id: str) -> bool:
    from recsys import registry

    live = registry.get_live(engine)
    return live is not None and live.model_id == model_id


def serving_model(engine, decision: dict) -> str | None:
    """The model this run leaves serving: the new one when it is promoted, else the LIVE one (None: no model)."""
    from recsys import registry

    if decision.get("decision") == "promoted":
        return decision["model_id"]
    live = registry.get_live(engine)
    return live.model_id if live is not None else None


@recorded(step("publish"))
def publish(engine, store, day: dt.date, decision: dict) -> dict:
    """The new model's files verified and published (``release.prepare``): ready to be made LIVE, or to serve
    its A/B arm (a CANDIDATE's lists are precomputed into its own keys by this run's precompute)."""
    from recsys.pipeline import release

    if decision.get("dry_run"):
        raise Skip("dry run: nothing is published")
    out = release.prepare(engine, store, decision["model_id"], get_settings())
    return {**out, "decision": decision.get("decision"), "day": day.isoformat()}


def _start_ab_test(engine, model_id: str, live_model_id: str | None) -> dict:
    """ab_test policy: the new CANDIDATE is tested against the LIVE model (unless a test is running)."""
    from recsys.abtest.service import start_test
    from recsys.abtest.store import ABTestError

    s = get_settings()
    try:
        test = start_test(engine, treatment_model_id=model_id, control_model_id=live_model_id,
                          duration_hours=s.ab_default_duration_hours,
                          treatment_fraction=s.ab_default_treatment_fraction, settings=s)
    except ABTestError as exc:  # another test runs: the candidate waits, the run goes on
        log.warning("no A/B test for candidate %s: %s", model_id, exc)
        return {"ab_test_id": None, "ab_test_error": str(exc)}
    return {"ab_test_id": test["test_id"]}


@recorded(step("shards"))
def shards(engine, day: dt.date, decision: dict) -> list[int]:
    """The precompute shards to map over: ``0 .. RECSYS_PRECOMPUTE_SHARDS - 1`` (equal shares of the users,
    whatever their segments), none without a model to serve."""
    if decision.get("dry_run"):
        raise Skip("dry run: live recommendations are left as they are")
    if serving_model(engine, decision) is None:
        log.warning("no LIVE model yet: no personalised lists this run (fallback lists only)")
        return []
    return list(range(get_settings().precompute_shards))


@recorded(step("precompute"))
def precompute(engine, store, redis, day: dt.date, shard: int, decision: dict | None = None) -> dict:
    """The lists of the model this run leaves serving (a promoted model's into its own keys, activated after
    the switch), then those of a running A/B test's other model for its arm's users."""
    from recsys.abtest.precompute import precompute_test_arms
    from recsys.pipeline.precompute import precompute_shard as run

    s = get_settings()
    out = run(engine, store, redis, day, shard, serving_model(engine, decision or {}), settings=s)
    arms = precompute_test_arms(engine, store, redis, day, shard, settings=s)
    return {**out, "ab_test_id": arms["test_id"], "ab_users": arms["users"]}


@recorded(step("switch"))
def switch(engine, day: dt.date, decision: dict) -> dict:
    """A promoted model becomes LIVE (under the registry's lock, only while the LIVE model is the one the
    decision was taken against), now that its lists are written."""
    from recsys.pipeline import release

    if decision.get("dry_run") or decision.get("decision") != "promoted":
        raise Skip(f"nothing to switch: the decision is {decision.get('decision')!r}")
    out = release.switch(engine, decision["model_id"], decision.get("reason") or "promoted by the nightly run",
                         expected_live=decision.get("live_model_id"))
    return {**out, "day": day.isoformat()}


@recorded(step("promote_lists"))
def promote_lists(engine, redis, day: dt.date, shard: int, decision: dict) -> dict:
    """The promoted model's lists of the shard onto the LIVE keys (after the switch)."""
    from recsys.pipeline.activate import activate_shard as run

    if decision.get("dry_run") or decision.get("decision") != "promoted":
        raise Skip("no new LIVE model: its lists are the LIVE keys already")
    return run(engine, redis, day, decision["model_id"], shard, get_settings())


@recorded(step("lists"))
def lists(engine, store, redis, day: dt.date, decision: dict) -> dict:
    from recsys.pipeline.precompute import precompute_lists

    if decision.get("dry_run"):
        raise Skip("dry run: live lists are left as they are")
    return precompute_lists(engine, store, redis, day, get_settings())

"""One way to make a model LIVE, and to make a model ready for an A/B arm.

``make_live`` is what the nightly promotion (task by task: ``prepare``, the precompute shards, ``switch``,
the activation shards), ``models promote``, ``models rollback`` and an A/B test's winner do, in this order:

1. ``prepare``: every file the registry recorded for the model is intact (``recsys.integrity``: a missing or
   altered file is refused, naming it), then it is published (its family's served files and
   ``metadata.json``) unless it already is;
2. its lists are precomputed for every active user into its own keys (``recs:<model>:{user}``): the LIVE
   keys still hold the current model's lists, and the API still serves them;
3. ``switch``: the registry makes it LIVE under the LIVE row's lock (``registry.promote`` /
   ``registry.rollback``), refused when the LIVE model is no longer the one the caller saw;
4. ``activate``: its lists are renamed onto the LIVE keys (``recsys.pipeline.activate``) and the shared
   lists and product embeddings are written for it.

A run that dies before the switch leaves the previous LIVE model serving its own lists; one that dies after
it leaves the new model LIVE with some lists still the previous model's, which the API re-scores on the fly
(a list of another model than the LIVE one is stale) until a re-run or the next night activates them.

``prepare_arm`` makes a CANDIDATE ready for an A/B test through the same steps 1 and 2 (its lists stay in its
own keys, which is where the API reads an arm's lists).

``decide`` is the nightly decision after the gate (``recsys.evaluation.gate.judge``): a winner is to be made
LIVE (or, with the ``ab_test`` policy, kept as a CANDIDATE), a loser archived.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import Engine

from recsys import registry
from recsys.artifacts import ArtifactStore, model_key
from recsys.artifacts.retention import METADATA_FILE
from recsys.constants import STATUS_ARCHIVED, STATUS_LIVE
from recsys.evaluation.gate import judge
from recsys.families import family_of
from recsys.integrity import OK, check_stored, require_intact
from recsys.pipeline.activate import activate_users
from recsys.pipeline.precompute import latest_event_day, precompute_all, precompute_lists
from recsys.pipeline.publish import publish_model, published
from recsys.settings import DEFAULTS, Settings

log = logging.getLogger(__name__)
DECISION_PROMOTED, DECISION_ARCHIVED, DECISION_CANDIDATE = "promoted", "archived", "candidate"
POLICIES = ("auto", "ab_test")
_UNSET = object()


class ReleaseError(registry.RegistryError):
    """A model that cannot be made LIVE or enter a test (the message says why and what to run)."""


def required_files(store: ArtifactStore, model_id: str, model_type: str) -> tuple[str, ...]:
    """The files every model of its family needs (its own files); every other recorded file (what publish
    wrote) is checked too."""
    return family_of(model_type).own_files(store, model_id)


def verify_model(engine: Engine, store: ArtifactStore, model_id: str | None = None) -> dict:
    """Every file of ``model_id`` (default: the LIVE model) against its recorded checksum (streamed)."""
    if model_id is None:
        live = registry.get_live(engine)
        if live is None:
            raise registry.RegistryError("no LIVE model to verify: name a model id")
        model_id = live.model_id
    row = registry.get_model(engine, model_id)
    files = check_stored(store, model_id, row.artifacts, required_files(store, model_id, row.model_type))
    return {"model_id": model_id, "status": row.status, "ok": all(s == OK for s in files.values()), "files": files}


def prepare(engine: Engine, store: ArtifactStore, model_id: str, settings: Settings = DEFAULTS) -> dict:
    """Step 1: the model's files verified, then published unless it already is."""
    row = registry.get_model(engine, model_id)  # UnknownModelError for a wrong id
    require_intact(store, model_id, row.artifacts, required_files(store, model_id, row.model_type))
    if published(store, model_id, row.model_type) and store.exists(model_key(model_id, METADATA_FILE)):
        return {"model_id": model_id, "published": "already", "keys": [], "deleted": []}
    out = publish_model(engine, store, model_id, keep=settings.keep_model_versions,
                        rollback_depth=settings.rollback_depth)
    return {**out, "published": "now"}


def switch(engine: Engine, model_id: str, reason: str, expected_live=_UNSET, rollback: bool = False,
           allow_archived: bool = True) -> dict:
    """Step 3: the registry's LIVE model becomes ``model_id`` (under the LIVE row's lock); ``expected_live``:
    only while that model is LIVE (``LiveChangedError`` otherwise); ``allow_archived=False`` (an A/B winner):
    ``ArchivedModelError`` for an ARCHIVED model. ``rollback``: the step back of ``registry.rollback``
    (``model_id`` must be its target)."""
    if rollback:
        out = registry.rollback(engine, expected_live=None if expected_live is _UNSET else expected_live)
        if out["model_id"] != model_id:
            raise ReleaseError(f"the rollback brought back {out['model_id']}, not {model_id}")
        return out
    return registry.promote(engine, model_id, reason=reason,
                            expected_live=None if expected_live is _UNSET else expected_live,
                            allow_archived=allow_archived)


def activate(engine: Engine, store: ArtifactStore, redis, model_id: str, day: dt.date, user_ids,
             settings: Settings = DEFAULTS) -> dict:
    """Step 4: the model's lists onto the LIVE keys, then the shared lists and product embeddings."""
    moved = activate_users(redis, model_id, user_ids)
    lists = precompute_lists(engine, store, redis, day, settings)
    return {"moved": moved, "lists": {k: v for k, v in lists.items() if k != "product_embeddings"},
            "product_embeddings": lists.get("product_embeddings")}


def make_live(engine: Engine, store: ArtifactStore, redis, model_id: str, reason: str, *,
              settings: Settings = DEFAULTS, day: dt.date | None = None, expected_live=_UNSET,
              rollback: bool = False, allow_archived: bool = True) -> dict:
    """Verify, publish, precompute, switch, activate (see the module doc); returns what each step did.
    ``expected_live`` / ``allow_archived``: the switch's conditions, checked first (nothing is written for a
    model that could not be switched) and again under the lock."""
    row = registry.get_model(engine, model_id)
    if row.status == STATUS_LIVE and not rollback:
        return {**registry.promote(engine, model_id, reason=reason), "prepared": None, "precompute": None}
    if not allow_archived and row.status == STATUS_ARCHIVED:
        raise registry.ArchivedModelError(f"{model_id} is ARCHIVED ({row.decision or 'no reason recorded'})")
    if expected_live is not _UNSET and not rollback:
        live = registry.get_live(engine)
        if (live.model_id if live else None) != expected_live:
            raise registry.LiveChangedError(f"{expected_live} is no longer LIVE ({live.model_id if live else 'no model'} is)")
    prepared = prepare(engine, store, model_id, settings)
    day = day or latest_event_day(engine, skew_ms=settings.event_clock_skew_seconds * 1000)
    lists = precompute_all(engine, store, redis, day, model_id, settings)
    switched = switch(engine, model_id, reason, expected_live, rollback, allow_archived)
    activated = activate(engine, store, redis, model_id, day, lists.pop("user_ids"), settings)
    log.warning("%s is LIVE (%s): %d lists precomputed, %d activated", model_id, reason, lists["users"],
                activated["moved"])
    return {**switched, "prepared": prepared, "activated": activated,
            "precompute": {k: lists[k] for k in ("day", "model_id", "users", "seconds")}}


def rollback_live(engine: Engine, store: ArtifactStore, redis, settings: Settings = DEFAULTS) -> dict:
    """One step back in the promotion history (``make_live`` of the model the LIVE one replaced)."""
    plan = registry.rollback_target(engine)
    out = make_live(engine, store, redis, plan["to"], f"rollback from {plan['from']}", settings=settings,
                    expected_live=plan["from"], rollback=True)
    log.warning("rolled back from %s to %s", plan["from"], plan["to"])
    return out


def promote_live(engine: Engine, store: ArtifactStore, redis, model_id: str, reason: str,
                 settings: Settings = DEFAULTS) -> dict:
    """Make ``model_id`` LIVE by hand (an ARCHIVED model may come back by hand)."""
    live = registry.get_live(engine)
    return make_live(engine, store, redis, model_id, reason, settings=settings,
                     expected_live=live.model_id if live is not None else None)


def prepare_arm(engine: Engine, store: ArtifactStore, redis, model_id: str, settings: Settings = DEFAULTS,
                day: dt.date | None = None, precompute: bool = True) -> dict:
    """A model ready to serve an A/B arm: not ARCHIVED, files verified, published, and (``precompute``) its
    lists written to its own keys for every active user (the API also scores an arm on the fly)."""
    row = registry.get_model(engine, model_id)
    if row.status == STATUS_ARCHIVED:
        raise ReleaseError(f"model {model_id!r} is ARCHIVED: archived models cannot enter a test")
    prepared = prepare(engine, store, model_id, settings)
    if not precompute or row.status == STATUS_LIVE:
        return {**prepared, "precompute": None}
    day = day or latest_event_day(engine, skew_ms=settings.event_clock_skew_seconds * 1000)
    lists = precompute_all(engine, store, redis, day, model_id, settings)
    return {**prepared, "precompute": {k: lists[k] for k in ("day", "model_id", "users", "seconds")}}


def decide(engine: Engine, model_id: str, margin: float, force: bool = False, policy: str = "auto") -> dict:
    """The nightly decision from the gate's metrics: ``promoted`` (to be made LIVE by the run's release
    steps), ``candidate`` (the ``ab_test`` policy, when a LIVE model exists to test against) or ``archived``.

    ``force`` promotes whatever the metrics. A model that is already LIVE stays ``promoted``."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, not {policy!r}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, not {margin}")
    row = registry.get_model(engine, model_id)
    if row.status == STATUS_LIVE:
        return {"decision": DECISION_PROMOTED, "live_model_id": model_id, "reason": "already LIVE"}
    wins, why = (True, "forced promotion") if force else judge(row.metrics or {}, margin)
    live = registry.get_live(engine)
    live_id = live.model_id if live else None
    if wins and (force or policy == "auto" or live is None):  # no LIVE model: nothing to A/B test against
        return {"decision": DECISION_PROMOTED, "live_model_id": live_id, "reason": why}
    if wins:
        registry.mark_candidate(engine, model_id, reason=f"A/B candidate: {why}")
        return {"decision": DECISION_CANDIDATE, "live_model_id": live_id, "reason": why}
    registry.archive(engine, model_id, reason=why)
    return {"decision": DECISION_ARCHIVED, "live_model_id": live_id, "reason": why}

"""Merchandising rules' admin routes: create, list, update, expire, preview. HTTP only; the table is
``recsys.db.merch_rules``, the rules' effect ``recsys.ranking.merch_rules``.

Every one needs the admin credential (``auth.py``), as the A/B endpoints. A change is served by this node at
once (it reads the rules again before answering) and by every other node within
``RECSYS_MERCH_RULES_POLL_SECONDS`` (``refresh.rules_forever``), and by the next precompute's cached answers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from recsys.api.ab_admin import ABAdmin
from recsys.api.auth import ADMIN
from recsys.api.deps import get_recommender, get_request_id, get_state
from recsys.api.errors import error_responses
from recsys.api.merch_schemas import MerchRuleFields, MerchRuleList, MerchRulePatch, MerchRuleView, RulesPreview
from recsys.api.routes.abtests import get_admin
from recsys.api.schemas import NumItems, id_path, id_query
from recsys.db import merch_rules as rules_db
from recsys.ranking.merch_rules import RuleSet, rule_from_row
from recsys.serving.answers import response_items
from recsys.serving.errors import InvalidInputError, NotFoundError
from recsys.serving.refresh import refresh_rules
from recsys.serving.service import RecommendationService
from recsys.serving.state import ServingState

router = APIRouter(prefix="/admin/rules", tags=["merchandising"], dependencies=ADMIN)
State = Annotated[ServingState, Depends(get_state)]
Admin = Annotated[ABAdmin, Depends(get_admin)]
RequestId = Annotated[str, Depends(get_request_id)]
RuleId = Annotated[int, id_path("the rule's id")]
_ERRORS = error_responses(401, 403, 404, 422)


def _by(request: Request) -> str:
    """Who made the change: the admin credential is one shared token, so the client's address names them."""
    return f"admin@{request.client.host if request.client else 'unknown'}"


def _view(row: dict, state: ServingState, request_id: str | None = None) -> dict:
    live = row["expired_at"] is None and rule_from_row(row).live(state.now_ms())
    return MerchRuleView.model_validate({**row, "live": live, "request_id": request_id}).model_dump(mode="json")


async def _run(admin: ABAdmin, state: ServingState, fn, **kwargs) -> dict:
    try:
        row = await admin.run(fn, admin.engine, **kwargs)
    except rules_db.UnknownRuleError as exc:
        raise NotFoundError(str(exc), field="rule_id") from exc
    await refresh_rules(state)  # this node serves the change now; the others at their next poll
    return row


@router.post("", status_code=201, response_model=MerchRuleView, responses=error_responses(400, 401, 403, 413, 422))
async def create_rule(body: MerchRuleFields, request: Request, admin: Admin, state: State, request_id: RequestId):
    """A new rule, live from ``starts_at`` (now when none) on every API node within the poll interval."""
    row = await _run(admin, state, rules_db.create_rule, values=body.model_dump(), by=_by(request))
    return _view(row, state, request_id)


@router.get("", response_model=MerchRuleList, responses=_ERRORS)
async def list_rules(admin: Admin, state: State, request_id: RequestId):
    """Every rule, expired ones included (the record), oldest first, with the version the nodes poll."""
    rows = await admin.run(rules_db.list_rules, admin.engine)
    return {"rules": [_view(r, state) for r in rows], "version": state.merch_rules.version, "request_id": request_id}


@router.patch("/{rule_id}", response_model=MerchRuleView, responses=error_responses(400, 401, 403, 404, 413, 422))
async def update_rule(rule_id: RuleId, body: MerchRulePatch, request: Request, admin: Admin, state: State,
                      request_id: RequestId):
    """The rule with the fields given changed (one revision more); the result must be a valid rule."""
    try:
        current = await admin.run(rules_db.get_rule, admin.engine, rule_id=rule_id)
    except rules_db.UnknownRuleError as exc:
        raise NotFoundError(str(exc), field="rule_id") from exc
    changes = body.model_dump(exclude_unset=True)
    merged = {k: current[k] for k in rules_db.EDITABLE} | changes
    try:
        MerchRuleFields.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInputError(f"the rule would not be valid: {first['msg']}",
                                field=".".join(str(p) for p in first["loc"]) or "body") from exc
    row = await _run(admin, state, rules_db.update_rule, rule_id=rule_id, changes=changes, by=_by(request))
    return _view(row, state, request_id)


@router.post("/{rule_id}/expire", response_model=MerchRuleView, responses=_ERRORS)
async def expire_rule(rule_id: RuleId, request: Request, admin: Admin, state: State, request_id: RequestId):
    """The rule ended now, for good (it stays listed, with ``expired_at``)."""
    row = await _run(admin, state, rules_db.expire_rule, rule_id=rule_id, by=_by(request))
    return _view(row, state, request_id)


@router.get("/preview", response_model=RulesPreview, responses=_ERRORS)
async def preview(user_id: Annotated[int, id_query("the user whose list to preview")], state: State,
                  recommender: Annotated[RecommendationService, Depends(get_recommender)], request_id: RequestId,
                  num_items: NumItems = 10):
    """The user's list with the live rules and without any (nothing logged: not an impression)."""
    await refresh_rules(state)
    rules = state.merch_rules
    with_rules = await recommender.preview(user_id, num_items, rules)
    without = await recommender.preview(user_id, num_items, RuleSet())
    live = [{"rule_id": r.rule_id, "name": r.name, "action": r.action} for r in rules.live(state.now_ms())]
    return {"user_id": user_id, "with_rules": response_items(with_rules.items),
            "without_rules": response_items(without.items), "source": with_rules.source, "live_rules": live,
            "request_id": request_id}

"""The console's merchandising page (``recsys.api.console.rules_page``): HTTP only.

``/admin/rules`` is the rules' JSON API (``routes/merch.py``); the page lives at ``/admin/merchandising`` and its
forms call that API's route functions themselves (create, update, expire, preview): the same checks, the same
write, the same refresh of this node's rules. A refused input is the page again with the reason, nothing changed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse

from recsys.api.auth import ADMIN, ADMIN_PAGE
from recsys.api.console.rules_page import FIELDS, render_rules
from recsys.api.deps import get_recommender, get_request_id
from recsys.api.merch_schemas import MerchRuleFields, MerchRulePatch
from recsys.api.routes import merch
from recsys.api.routes.console import FormText, State, form_refusal, html_or_json, PAGE_RESPONSES
from recsys.api.routes.merch import Admin, RuleId
from recsys.serving.errors import ServingError
from recsys.serving.service import RecommendationService

router = APIRouter(prefix="/admin/merchandising", tags=["admin console"])
RequestId = Annotated[str, Depends(get_request_id)]
Recommender = Annotated[RecommendationService, Depends(get_recommender)]
Shown = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="the rule just changed")]
_FORM = {303: {"description": "done: back to the page"}, **html_or_json(401, 403, 404, 413, 422)}
PATH = "/admin/merchandising"
_NUMBERS_OR_ZERO = ("weight", "share")  # an empty field is 0: the rule does not use it


def _integer(text: str) -> int | str:
    """A product id as an integer; anything else as sent, for the rule's check to name (ids are strict)."""
    return int(text) if text.isascii() and text.lstrip("-").isdigit() else text


def rule_values(sent: dict[str, str]) -> dict:
    """The form's text fields as a rule's fields: comma lists split, empty fields none (weight and share 0)."""
    values: dict = {}
    for name, text in sent.items():
        text = text.strip()
        if name in ("products", "categories"):
            parts = [part.strip() for part in text.split(",") if part.strip()]
            values[name] = [_integer(p) for p in parts] if name == "products" else parts
        elif name in _NUMBERS_OR_ZERO:
            values[name] = text or 0.0
        else:
            values[name] = text or (None if name != "name" else "")
    return values


async def _page(request: Request, admin, state, request_id: str, status_code: int = 200, *,
                values: dict | None = None, edit_id: int | None = None, preview=None, preview_user: str = "",
                message: str = "", ok: bool = False) -> HTMLResponse:
    listed = await merch.list_rules(admin, state, request_id)
    return HTMLResponse(render_rules(listed["rules"], form_values=values, edit_id=edit_id, preview=preview,
                                     preview_user=preview_user, message=message, ok=ok), status_code=status_code)


@router.get("", response_class=HTMLResponse, dependencies=ADMIN_PAGE,
            responses={**PAGE_RESPONSES, **html_or_json(404)})
async def console_rules(request: Request, admin: Admin, state: State, recommender: Recommender,
                        request_id: RequestId, edit: Shown = None, created: Shown = None, saved: Shown = None,
                        expired: Shown = None,
                        preview_user: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None):
    """The rules, the form that creates one (or edits rule ``edit``), and ``preview_user``'s list with and
    without the live rules (``GET /admin/rules/preview``)."""
    done = {created: "created", saved: "saved", expired: "expired"}
    message = next((f"Rule #{rid} {what}." for rid, what in done.items() if rid), "")
    values = None
    if edit is not None:
        listed = await merch.list_rules(admin, state, request_id)
        values = next((r for r in listed["rules"] if r["rule_id"] == edit), None)
        if values is None:
            return await _page(request, admin, state, request_id, 404, message=f"no merchandising rule {edit}")
    preview = None
    if preview_user is not None:
        preview = await merch.preview(preview_user, state, recommender, request_id)
    return await _page(request, admin, state, request_id, values=values, edit_id=edit, preview=preview,
                       preview_user="" if preview_user is None else str(preview_user), message=message, ok=True)


def rule_form(name: FormText = "", action: FormText = "", products: FormText = "", categories: FormText = "",
              price_min: FormText = "", price_max: FormText = "", weight: FormText = "", slot: FormText = "",
              share: FormText = "", starts_at: FormText = "", ends_at: FormText = "") -> dict[str, str]:
    """The rule form's fields as sent (a dependency of the create and the edit form)."""
    return dict(zip(FIELDS, (name, action, products, categories, price_min, price_max, weight, slot, share,
                             starts_at, ends_at)))


Sent = Annotated[dict[str, str], Depends(rule_form)]


@router.post("", response_class=RedirectResponse, status_code=303, dependencies=ADMIN, responses=_FORM)
async def console_create_rule(request: Request, admin: Admin, state: State, request_id: RequestId, sent: Sent):
    """The create form: ``POST /admin/rules``."""
    try:
        body = MerchRuleFields(**rule_values(sent))
        rule = await merch.create_rule(body, request, admin, state, request_id)
    except ValidationError as exc:
        return await _page(request, admin, state, request_id, 422, values=sent, message=form_refusal(exc))
    except ServingError as exc:
        return await _page(request, admin, state, request_id, exc.status_code, values=sent, message=exc.message)
    return RedirectResponse(f"{PATH}?created={int(rule['rule_id'])}", status_code=303)


@router.post("/{rule_id}", response_class=RedirectResponse, status_code=303, dependencies=ADMIN, responses=_FORM)
async def console_update_rule(rule_id: RuleId, request: Request, admin: Admin, state: State, request_id: RequestId,
                              sent: Sent):
    """The edit form: ``PATCH /admin/rules/{id}`` with every field of the form."""
    try:
        body = MerchRulePatch(**rule_values(sent))
        await merch.update_rule(rule_id, body, request, admin, state, request_id)
    except ValidationError as exc:
        return await _page(request, admin, state, request_id, 422, values=sent, edit_id=rule_id,
                           message=form_refusal(exc))
    except ServingError as exc:
        return await _page(request, admin, state, request_id, exc.status_code, values=sent, edit_id=rule_id,
                           message=exc.message)
    return RedirectResponse(f"{PATH}?saved={rule_id}", status_code=303)


@router.post("/{rule_id}/expire", response_class=RedirectResponse, status_code=303, dependencies=ADMIN,
             responses=_FORM)
async def console_expire_rule(rule_id: RuleId, request: Request, admin: Admin, state: State, request_id: RequestId):
    """A rule's Expire button: ``POST /admin/rules/{id}/expire``."""
    try:
        await merch.expire_rule(rule_id, request, admin, state, request_id)
    except ServingError as exc:
        return await _page(request, admin, state, request_id, exc.status_code, message=exc.message)
    return RedirectResponse(f"{PATH}?expired={rule_id}", status_code=303)

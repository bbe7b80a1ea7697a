"""The admin console's pages (``recsys.api.console``): HTTP only.

GETs need the admin credential as the dashboard does (a browser without the cookie is sent to the login
form); the forms POST here with the cookie, so ``auth.py`` refuses them unless they come from this API's own
pages. A form calls the same function as its JSON endpoint (``routes.abtests.start_test`` / ``stop_test``),
then sends the browser back to the list (303); a refused input is the page again with the error's status and
message, nothing changed.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse

from recsys import registry
from recsys.abtest import service
from recsys.api.ab_schemas import ABTestCreate
from recsys.api.auth import ADMIN, ADMIN_PAGE
from recsys.api.console.abtests_page import render_ab_tests
from recsys.api.console.layout import home, page
from recsys.api.console.models_page import render_models
from recsys.api.deps import get_state
from recsys.api.errors import error_responses
from recsys.api.routes.abtests import Admin, TestId, run_admin, start_test, stop_test
from recsys.artifacts import ArtifactStore, partition_key
from recsys.serving.errors import InvalidInputError, ServingError
from recsys.serving.state import ServingState

router = APIRouter(prefix="/admin", tags=["admin console"])
State = Annotated[ServingState, Depends(get_state)]
DRIFT_KIND = "drift"  # recsys.drift.report writes drift/date=D/report.json and report.html
HISTORY_ROWS = 50


def html_or_json(*codes: int) -> dict:
    """Error answers of a form: the page again with the refusal (HTML), or the API's JSON error body when the
    request itself is refused (credentials, origin, a malformed field)."""
    return {code: {**entry, "content": {**entry["content"], "text/html": {}}}
            for code, entry in error_responses(*codes).items()}


PAGE_RESPONSES = {200: {"content": {"text/html": {}}},
         303: {**error_responses(303)[303], "description": "no credentials: to the login form"},
         **error_responses(401, 403, 422)}
_FORM = {303: {"description": "done: back to the list"}, **error_responses(401, 403, 413),
         **html_or_json(404, 409, 422)}
Shown = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="the test just started or stopped")]
FormText = Annotated[str, Form(max_length=256)]


@router.get("", response_class=HTMLResponse, dependencies=ADMIN_PAGE, responses=PAGE_RESPONSES)
async def console_home():
    """Where the login form lands: links to the console's pages."""
    return HTMLResponse(home())


def _ab_page_data(engine) -> tuple[list[dict], list[dict]]:
    return [service.view_of(t) for t in service.store.list_tests(engine)], registry.list_models(engine)


async def _ab_page(request: Request, admin, status_code: int = 200, **kwargs) -> HTMLResponse:
    tests, models = await run_admin(admin, _ab_page_data, admin.engine)
    for test in tests:
        test["dashboard"] = request.app.url_path_for("ab_test_dashboard", test_id=test["test_id"])
    return HTMLResponse(render_ab_tests(tests, models, **kwargs), status_code=status_code)


@router.get("/ab-tests", response_class=HTMLResponse, dependencies=ADMIN_PAGE, responses=PAGE_RESPONSES)
async def console_ab_tests(request: Request, admin: Admin, started: Shown = None, stopped: Shown = None):
    """Every A/B test with its stored results, and the form that starts one."""
    message = f"A/B test #{started} started." if started else f"A/B test #{stopped} stopped." if stopped else ""
    return await _ab_page(request, admin, message=message, ok=True)


def form_refusal(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


@router.post("/ab-tests", response_class=RedirectResponse, status_code=303, dependencies=ADMIN, responses=_FORM)
async def console_start_test(request: Request, admin: Admin, state: State, treatment_model_id: FormText = "",
                             control_model_id: FormText = "", duration_hours: FormText = "",
                             treatment_fraction: FormText = ""):
    """The start form: ``POST /models/ab-test``'s checks and work; a refusal is the page again with its reason."""
    sent = {"treatment_model_id": treatment_model_id, "control_model_id": control_model_id,
            "duration_hours": duration_hours, "treatment_fraction": treatment_fraction}
    try:
        body = ABTestCreate(**sent)
    except ValidationError as exc:
        return await _ab_page(request, admin, 422, message=form_refusal(exc), values=sent)
    try:
        test = await start_test(admin, state, body)
    except ServingError as exc:
        return await _ab_page(request, admin, exc.status_code, message=exc.message, values=sent)
    return RedirectResponse(f"/admin/ab-tests?started={int(test['test_id'])}", status_code=303)


@router.post("/ab-tests/{test_id}/stop", response_class=RedirectResponse, status_code=303, dependencies=ADMIN,
             responses=_FORM)
async def console_stop_test(test_id: TestId, request: Request, admin: Admin, state: State):
    """A test's stop button: ``POST /ab-tests/{id}/stop``'s work."""
    try:
        await stop_test(admin, state, test_id)
    except ServingError as exc:
        return await _ab_page(request, admin, exc.status_code, message=exc.message)
    return RedirectResponse(f"/admin/ab-tests?stopped={test_id}", status_code=303)


def latest_drift(store: ArtifactStore | None) -> dict | None:
    """The newest ``drift/date=D/report.json`` (ISO dates sort as text), ``None`` when there is none."""
    keys = [k for k in (store.list(f"{DRIFT_KIND}/") if store is not None else []) if k.endswith("/report.json")]
    return json.loads(store.get_bytes(max(keys))) if keys else None


def _models_data(engine, store: ArtifactStore | None) -> tuple[list[dict], list[dict], dict | None, str]:
    models, history = registry.list_models(engine), registry.promotion_history(engine, HISTORY_ROWS)
    try:
        return models, history, latest_drift(store), ""
    except Exception as exc:  # an unreachable or unreadable store: the rest of the page still shows
        return models, history, None, f"the latest drift report could not be read: {exc}"


@router.get("/models", response_class=HTMLResponse, dependencies=ADMIN_PAGE, responses=PAGE_RESPONSES)
async def console_models(admin: Admin, state: State):
    """The registry by status (metrics, selection table), the promotion history, the latest drift report."""
    models, history, drift, error = await run_admin(admin, _models_data, admin.engine, state.store)
    return HTMLResponse(render_models(models, history, drift, error))


def _drift_html(store: ArtifactStore | None, day: dt.date) -> str | None:
    key = partition_key(DRIFT_KIND, day, "report.html")
    return store.get_bytes(key).decode() if store is not None and store.exists(key) else None


@router.get("/drift/{day}", response_class=HTMLResponse, dependencies=ADMIN_PAGE,
            responses={**PAGE_RESPONSES, **html_or_json(404)})
async def console_drift_report(day: Annotated[str, Path(max_length=10, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                                                        description="the report's day, YYYY-MM-DD")],
                               admin: Admin, state: State):
    """The full data-drift report of a day, as the nightly run rendered it into the artifact store."""
    try:
        date = dt.date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidInputError(f"day: {exc}", field="day") from exc
    report = await admin.run(_drift_html, state.store, date)
    if report is None:
        return HTMLResponse(page("Data drift", "", f"no drift report for {day} in the artifact store"),
                            status_code=404)
    return HTMLResponse(report)

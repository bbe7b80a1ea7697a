"""A/B test routes: create, list, read, refresh, stop, dashboard. HTTP only; the work is ``recsys.abtest.service``.

Every one needs the admin credential (``auth.py``): ``Authorization: Bearer
<RECSYS_ADMIN_TOKEN>`` or the login cookie; 401 without, 403 with a wrong token, and
403 for every token while no admin token is configured (the endpoints are then off).
A browser without the cookie is sent from the dashboard to the login form.

Reads serve the stored results (written by the hourly DAG ``recsys_ab_results`` or by
``POST /ab-tests/{id}/refresh``): a GET never recomputes them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse

from recsys.abtest import service
from recsys.abtest.dashboard import render_dashboard
from recsys.abtest.store import InvalidTestError, TestConflictError, UnknownTestError
from recsys.api.ab_admin import ABAdmin
from recsys.api.ab_schemas import ABTestCreate, ABTestCreated, ABTestList, ABTestView
from recsys.api.auth import ADMIN, ADMIN_PAGE
from recsys.api.deps import get_request_id, get_state, serving_state
from recsys.api.errors import OrjsonResponse, error_responses
from recsys.api.schemas import id_path
from recsys.registry import UnknownModelError
from recsys.serving.errors import ConflictError, DependencyDown, InvalidInputError, NotFoundError
from recsys.serving.refresh import refresh_model
from recsys.serving.state import ServingState

router = APIRouter(tags=["ab-tests"])
State = Annotated[ServingState, Depends(get_state)]
RequestId = Annotated[str, Depends(get_request_id)]
TestId = Annotated[int, id_path("the A/B test's id")]


def get_admin(request: Request) -> ABAdmin:
    app_state = request.app.state
    if getattr(app_state, "ab_admin", None) is None:
        serving = serving_state(request)
        app_state.ab_admin = ABAdmin(serving.settings, serving.db.engine, serving.redis.client)
    return app_state.ab_admin


Admin = Annotated[ABAdmin, Depends(get_admin)]
_READ_ERRORS = error_responses(401, 403, 404, 422)


async def run_admin(admin: ABAdmin, fn, *args, state: ServingState | None = None, **kwargs):
    """Run an A/B operation in a thread (after sending this worker's buffered impressions to the stream);
    its typed errors become HTTP answers."""
    if state is not None:
        try:
            await state.redis.flush_buffer()
        except DependencyDown:
            state.degraded("redis")
    try:
        return await admin.run(fn, *args, **kwargs)
    except UnknownModelError as exc:
        raise NotFoundError(str(exc).strip("'\""), field="model_id") from exc
    except UnknownTestError as exc:
        raise NotFoundError(str(exc), field="test_id") from exc
    except TestConflictError as exc:
        raise ConflictError(str(exc)) from exc
    except InvalidTestError as exc:
        raise InvalidInputError(str(exc)) from exc


async def start_test(admin: ABAdmin, state: ServingState, body: ABTestCreate) -> dict:
    """Start a test (the JSON endpoint and the console's form): this worker serves it at once, the others
    within ``api_refresh_seconds``."""
    test = await run_admin(admin, lambda: service.start_test(
        admin.engine, treatment_model_id=body.treatment_model_id, control_model_id=body.control_model_id,
        duration_hours=body.duration_hours, treatment_fraction=body.treatment_fraction, settings=state.settings,
        artifacts=state.store))
    await refresh_model(state)
    return test


async def stop_test(admin: ABAdmin, state: ServingState, test_id: int) -> dict:
    """Stop a running test (the JSON endpoint and the console's button)."""
    test = await run_admin(admin, lambda: service.stop_test(admin.engine, test_id, redis=admin.redis,
                                                        settings=state.settings), state=state)
    await refresh_model(state)
    return test


def _view(request: Request, test: dict, request_id: str) -> dict:
    url = str(request.url_for("ab_test_dashboard", test_id=test["test_id"]))
    return {**service.view_of(test), "metrics_dashboard": url, "request_id": request_id}


@router.post("/models/ab-test", status_code=201, response_model=ABTestCreated, dependencies=ADMIN,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422))
async def create_ab_test(body: ABTestCreate, request: Request, admin: Admin, state: State, request_id: RequestId):
    test = await start_test(admin, state, body)
    view = _view(request, test, request_id)
    return OrjsonResponse({k: view[k] for k in ("test_id", "start_time", "end_time", "metrics_dashboard",
                                                "request_id")}, status_code=201)


@router.get("/ab-tests", response_model=ABTestList, dependencies=ADMIN, responses=error_responses(401, 403))
async def list_ab_tests(request: Request, admin: Admin, request_id: RequestId):
    """The tests with their stored results (newest first)."""
    tests = await run_admin(admin, service.store.list_tests, admin.engine)
    return OrjsonResponse({"tests": [_view(request, t, request_id) for t in tests], "request_id": request_id})


@router.get("/ab-tests/{test_id}", response_model=ABTestView, dependencies=ADMIN, responses=_READ_ERRORS)
async def get_ab_test(test_id: TestId, request: Request, admin: Admin, request_id: RequestId):
    """The test with its stored results (``results.computed_at`` tells their age)."""
    test = await run_admin(admin, service.store.get_test, admin.engine, test_id)
    return OrjsonResponse(_view(request, test, request_id))


@router.post("/ab-tests/{test_id}/refresh", response_model=ABTestView, dependencies=ADMIN, responses=_READ_ERRORS)
async def refresh_ab_test(test_id: TestId, request: Request, admin: Admin, state: State, request_id: RequestId):
    """Recompute a running test's results now (flushing the logged impressions first); the hourly DAG
    does the same every hour. A test past its end is closed and decided."""
    test = await run_admin(admin, lambda: service.refresh_test(admin.engine, test_id, redis=admin.redis,
                                                           settings=state.settings), state=state)
    return OrjsonResponse(_view(request, test, request_id))


@router.post("/ab-tests/{test_id}/stop", response_model=ABTestView, dependencies=ADMIN,
             responses=_READ_ERRORS)
async def stop_ab_test(test_id: TestId, request: Request, admin: Admin, state: State, request_id: RequestId):
    test = await stop_test(admin, state, test_id)
    return OrjsonResponse(_view(request, test, request_id))


@router.get("/ab-tests/{test_id}/dashboard", response_class=HTMLResponse, name="ab_test_dashboard",
            dependencies=ADMIN_PAGE,
            responses={200: {"content": {"text/html": {}}},
                       **_READ_ERRORS, 303: {**error_responses(303)[303],
                                             "description": "no credentials: to the login form"}})
async def ab_test_dashboard(test_id: TestId, request: Request, admin: Admin, request_id: RequestId):
    """The test's page over its stored results (a person logs in at ``/admin/login``)."""
    test = await run_admin(admin, service.store.get_test, admin.engine, test_id)
    return HTMLResponse(render_dashboard(_view(request, test, request_id)))

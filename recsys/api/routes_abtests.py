"""A/B test routes: create, list, read, stop, dashboard. HTTP only; the work is ``recsys.abtest.service``.

Mutating endpoints need ``Authorization: Bearer <RECSYS_ADMIN_TOKEN>``: 401 without
a bearer token, 403 with a wrong one, and 403 for every token while no admin token
is configured (admin endpoints are then off).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import HTMLResponse

from recsys.abtest import service
from recsys.abtest.dashboard import render_dashboard
from recsys.abtest.store import InvalidTestError, TestConflictError, UnknownTestError
from recsys.api.ab_admin import ABAdmin
from recsys.api.ab_schemas import ABTestCreate, ABTestCreated, ABTestList, ABTestView
from recsys.api.schemas import id_path
from recsys.api.deps import get_request_id, get_state, serving_state
from recsys.api.errors import (
    ApiError, ConflictError, DependencyDown, InvalidInputError, NotFoundError, OrjsonResponse, error_responses,
)
from recsys.api.refresh import refresh_model
from recsys.api.state import ServingState
from recsys.registry import UnknownModelError

router = APIRouter(tags=["ab-tests"])
State = Annotated[ServingState, Depends(get_state)]
RequestId = Annotated[str, Depends(get_request_id)]
TestId = Annotated[int, id_path("the A/B test's id")]
_bearer = HTTPBearer(auto_error=False, description="RECSYS_ADMIN_TOKEN")


class Unauthorized(ApiError):
    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    status_code = 403


def require_admin(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    token = serving_state(request).settings.admin_token
    if credentials is None:
        raise Unauthorized("admin endpoint: send 'Authorization: Bearer <RECSYS_ADMIN_TOKEN>'")
    if not token:
        raise Forbidden("admin endpoints are disabled: RECSYS_ADMIN_TOKEN is not set on the server")
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise Forbidden("wrong admin token")


def get_admin(request: Request) -> ABAdmin:
    app_state = request.app.state
    if getattr(app_state, "ab_admin", None) is None:
        serving = serving_state(request)
        app_state.ab_admin = ABAdmin(serving.settings, serving.db.engine, serving.redis.client)
    return app_state.ab_admin


Admin = Annotated[ABAdmin, Depends(get_admin)]
ADMIN = [Depends(require_admin)]


async def _call(admin: ABAdmin, fn, *args, state: ServingState | None = None, **kwargs):
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


def _view(request: Request, test: dict, request_id: str) -> dict:
    url = str(request.url_for("ab_test_dashboard", test_id=test["test_id"]))
    return {**service.view_of(test), "metrics_dashboard": url, "request_id": request_id}


def _refresh(admin: ABAdmin, test_id: int) -> dict:
    return service.refresh_test(admin.engine, test_id, redis=admin.redis,
                                max_age_seconds=admin.settings.ab_results_refresh_seconds, settings=admin.settings)


@router.post("/models/ab-test", status_code=201, response_model=ABTestCreated, dependencies=ADMIN,
             responses=error_responses(401, 403, 404, 409, 422))
async def create_ab_test(body: ABTestCreate, request: Request, admin: Admin, state: State, request_id: RequestId):
    test = await _call(admin, lambda: service.start_test(
        admin.engine, treatment_model_id=body.treatment_model_id, control_model_id=body.control_model_id,
        duration_hours=body.duration_hours, treatment_fraction=body.treatment_fraction, settings=state.settings,
        artifacts=state.store))
    await refresh_model(state)  # this worker serves the test at once; the others within api_refresh_seconds
    view = _view(request, test, request_id)
    return OrjsonResponse({k: view[k] for k in ("test_id", "start_time", "end_time", "metrics_dashboard",
                                                "request_id")}, status_code=201)


@router.get("/ab-tests", response_model=ABTestList)
async def list_ab_tests(request: Request, admin: Admin, state: State, request_id: RequestId):
    def run():
        for test in service.store.running_tests(admin.engine):
            _refresh(admin, test["test_id"])
        return service.store.list_tests(admin.engine)

    tests = await _call(admin, run, state=state)
    return OrjsonResponse({"tests": [_view(request, t, request_id) for t in tests], "request_id": request_id})


@router.get("/ab-tests/{test_id}", response_model=ABTestView, responses=error_responses(404, 422))
async def get_ab_test(test_id: TestId, request: Request, admin: Admin, state: State, request_id: RequestId):
    test = await _call(admin, _refresh, admin, test_id, state=state)
    return OrjsonResponse(_view(request, test, request_id))


@router.post("/ab-tests/{test_id}/stop", response_model=ABTestView, dependencies=ADMIN,
             responses=error_responses(401, 403, 404, 422))
async def stop_ab_test(test_id: TestId, request: Request, admin: Admin, state: State, request_id: RequestId):
    test = await _call(admin, lambda: service.stop_test(admin.engine, test_id, redis=admin.redis,
                                                        settings=state.settings), state=state)
    await refresh_model(state)
    return OrjsonResponse(_view(request, test, request_id))


@router.get("/ab-tests/{test_id}/dashboard", response_class=HTMLResponse, name="ab_test_dashboard",
            responses={200: {"content": {"text/html": {}}}, **error_responses(404, 422)})
async def ab_test_dashboard(test_id: TestId, request: Request, admin: Admin, state: State,
                            request_id: RequestId):
    test = await _call(admin, _refresh, admin, test_id, state=state)
    return HTMLResponse(render_dashboard(_view(request, test, request_id)))

"""Operations routes: ``/models/status`` (API key), ``/health`` (public; its details with an API key),
``/metrics`` (API key unless ``RECSYS_METRICS_PUBLIC``): three routers, so that the app gives each its own guard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import Response

from recsys.api import ops
from recsys.api.auth import API_KEY_HEADER
from recsys.api.deps import get_request_id, get_state
from recsys.api.errors import OrjsonResponse, error_responses
from recsys.api.schemas import Health, HealthStatus, ModelStatus
from recsys.serving.state import ServingState

router = APIRouter(tags=["operations"])
health_router = APIRouter(tags=["operations"])
metrics_router = APIRouter(tags=["operations"])
State = Annotated[ServingState, Depends(get_state)]
RequestId = Annotated[str, Depends(get_request_id)]


@router.get("/models/status", response_model=ModelStatus)
async def models_status(state: State, request_id: RequestId):
    return OrjsonResponse({**await ops.model_status(state), "request_id": request_id})


@health_router.get("/health", response_model=Health | HealthStatus,
                   responses={503: {"model": Health | HealthStatus}, **error_responses(422)})
async def health(request: Request, state: State, request_id: RequestId,
                 key: Annotated[str | None, Header(alias=API_KEY_HEADER, max_length=256, description=(
                     "optional: with a known API key the answer names each check, the catalogue size and the "
                     "served model; without one (a load balancer) it is the status only"))] = None):
    """``ok``, ``degraded`` (one store down, answers still served) or ``down`` (503)."""
    name = request.app.state.api_keys.name_of(key)
    if name is not None:
        request.state.api_key_name = name
    body, status = await ops.health(state, request.app.state.health_checks, details=name is not None)
    return OrjsonResponse({**body, "request_id": request_id}, status_code=status)


@metrics_router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(state: State):
    data, content_type = state.metrics.render()
    return Response(data, media_type=content_type)

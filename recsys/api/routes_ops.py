"""Operations routes: ``/models/status`` (API key), ``/health`` (public), ``/metrics`` (API key unless
``RECSYS_METRICS_PUBLIC``): three routers, so that the app gives each its own guard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from recsys.api import ops
from recsys.api.deps import get_request_id, get_state
from recsys.api.errors import OrjsonResponse
from recsys.api.schemas import Health, ModelStatus
from recsys.api.state import ServingState

router = APIRouter(tags=["operations"])
health_router = APIRouter(tags=["operations"])
metrics_router = APIRouter(tags=["operations"])
State = Annotated[ServingState, Depends(get_state)]
RequestId = Annotated[str, Depends(get_request_id)]


@router.get("/models/status", response_model=ModelStatus)
async def models_status(state: State, request_id: RequestId):
    return OrjsonResponse({**await ops.model_status(state), "request_id": request_id})


@health_router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(state: State, request_id: RequestId):
    body, status = await ops.health(state)
    return OrjsonResponse({**body, "request_id": request_id}, status_code=status)


@metrics_router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(state: State):
    data, content_type = state.metrics.render()
    return Response(data, media_type=content_type)

"""FastAPI dependencies: the app's serving state and its services, from ``app.state``."""

from __future__ import annotations

from fastapi import Request

from recsys.api.events import EventService
from recsys.api.item_lists import SimilarService
from recsys.api.serving import RecommendationService
from recsys.api.state import ServingState


def get_state(request: Request) -> ServingState:
    return request.app.state.serving


def get_recommender(request: Request) -> RecommendationService:
    return request.app.state.recommender


def get_event_service(request: Request) -> EventService:
    return request.app.state.event_service


def get_similar_service(request: Request) -> SimilarService:
    return request.app.state.similar_service


def get_request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""

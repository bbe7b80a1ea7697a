"""Paging without repeats: ``GET /recommendations?...&after=<request_id>`` (issue 24; Recombee's "recommend next
items").

Every ``/recommendations`` answer buffers ``page:{request_id}`` = ``{u: user_id, p: [products]}`` (the products it
and the pages before it served) for ``RECSYS_PAGE_TTL_SECONDS`` (0: paging off, nothing written); it rides with
the worker's next Redis pipeline, as the impression does (at most ``RECSYS_IMPRESSION_MAX_DELAY_SECONDS`` later on
an idle worker). A request naming
``after`` is answered by the same ranking with those products left out (``ItemFilter.paged``): the cached answer's
next items when it still holds, else the tiers' list without them. The id must be one this server signed (the
request ids of ``recsys.abtest.request_ids``; anything else is a 422) and must have served this user (an unknown,
expired or other user's id is a 404). A chain of pages stops at ``MAX_PAGED`` products (422).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from recsys.keys import page_key
from recsys.serving.errors import DependencyDown, InvalidInputError, NotFoundError
from recsys.serving.state import ServingState

MAX_PAGED = 1000  # products a chain of pages may serve


def record_page(state: ServingState, request_id: str, user_id: int, products: Sequence[int],
                before: Sequence[int] = ()) -> None:
    """Buffer what the answer ``request_id`` served (after ``before``, the earlier pages'), for its next page."""
    ttl = state.settings.page_ttl_seconds
    if request_id and ttl:
        value = orjson.dumps({"u": user_id, "p": [*before, *products]})
        state.redis.buffer.add_set(page_key(request_id), value, ttl)


async def served_before(state: ServingState, signer, request_id: str, user_id: int) -> tuple[int, ...]:
    """The products the answer ``request_id`` and its earlier pages served to ``user_id``."""
    ttl = state.settings.page_ttl_seconds
    if not ttl:
        raise NotFoundError("after: paging is off on this server (RECSYS_PAGE_TTL_SECONDS=0)", field="after")
    if not signer.verify(request_id):
        raise InvalidInputError("after: not a request id this server issued (the request_id of an earlier answer)",
                                field="after")
    try:
        await state.redis.flush_buffer()  # this worker's own recent answers first
        value = await state.redis.get_json(page_key(request_id))
    except DependencyDown:
        state.degraded("redis")
        raise
    if not isinstance(value, dict) or value.get("u") != user_id or not isinstance(value.get("p"), list):
        raise NotFoundError(f"after: no page of user {user_id} under request id {request_id} (unknown, expired "
                            f"after {ttl} seconds, or another user's)", field="after")
    served = tuple(int(p) for p in value["p"])
    if len(served) >= MAX_PAGED:
        raise InvalidInputError(f"after: paging stops after {MAX_PAGED} products", field="after")
    return served

"""A user's recent product sequence as the API keeps it, and the key that says whether it changed (pure).

The sequence is the user's distinct products of signal events (``recsys.data.frames.SIGNAL_EVENTS``:
views, clicks, wishlists, carts, purchases), **newest first**, at most ``MAX_SEQUENCE``: an event moves
its product to the front. It is what a family that scores in real time reads (``recsys.families``). The API keeps it in the ``seq`` field of ``session:{user_id}``
(``recsys.serving.session_state``); precompute and the hold-out evaluation build the same list from the
database (``recent_products``), so a precomputed list and a session agree on its key.

``sequence_key``: the newest ``KEY_PRODUCTS`` products joined. An event that changes the sequence
always changes its front (the product goes first; re-viewing the newest product changes nothing), so
the key changes exactly when the sequence does; products further back may differ between the database's
view and a session seeded from the last ``HISTORY_EVENTS`` events without making a list stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

MAX_SEQUENCE = 50  # the model reads at most its max_len (50 by default) newest products
KEY_PRODUCTS = 10


def push(sequence: Sequence[int], product_id: int, limit: int = MAX_SEQUENCE) -> list[int]:
    """``sequence`` (newest first) after an event on ``product_id`` (what the session's Lua script does)."""
    return [int(product_id), *(p for p in sequence if p != product_id)][:limit]


def newest_first(products_oldest_first: Iterable[int], limit: int = MAX_SEQUENCE) -> list[int]:
    """The distinct products of a time-ordered list, newest first (each at its latest position)."""
    out: list[int] = []
    seen: set[int] = set()
    for p in reversed(list(products_oldest_first)):
        p = int(p)
        if p not in seen:
            seen.add(p)
            out.append(p)
            if len(out) == limit:
                break
    return out


def sequence_key(sequence_newest_first: Sequence[int]) -> str:
    """``"p1,p2,..."`` of the newest ``KEY_PRODUCTS`` products ("" for an empty sequence)."""
    return ",".join(str(int(p)) for p in list(sequence_newest_first)[:KEY_PRODUCTS])

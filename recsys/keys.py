"""Every Redis key name of recsys, and the encoding of the cached per-user values: one module that
precompute, the API, the CLI and the benchmarks all use.

Per-user keys carry the user id as a Redis Cluster hash tag (``recs:{42}``, ``session:{42}``): only
the part in braces is hashed, so all of one user's keys are in one slot, and the cache hit's one
pipelined read (``RedisStore.read_user_view``) goes to one node in one round trip, in a single Redis
as in a cluster. Shared keys (trending, bestsellers, the impression stream, rate-limit buckets) have
no tag and live wherever their name hashes.

Keys of a release before the hash tags (``recs:42``) are not read: a user whose new-format keys
are missing is a cache miss, answered as any miss (scored on the fly, or the fallback tiers; the
session and counter are seeded again from the database), and the old keys expire by their TTL.

Values:
- ``recs:{user}`` (and ``recs:<model>:{user}``): the model's list, JSON ``{products, scores,
  reasons, model_version, updated_at}`` and, for a model that scores in real time, ``seq`` (``recs_payload``,
  ``encode_recs``).
- ``answer:{user}`` (and ``answer:<model>:{user}``): the final Tier-1 answer of that list for the
  user's session, as the API sends it (``recsys.serving.answers``).
- ``purchases:{user}``: the user's purchases ``[[product_id, last purchase ms, times], ...]``, read from the
  database by buy it again and kept ``PURCHASES_TTL_SECONDS`` (a purchase or return event deletes it).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

# --- per-user keys (hash-tagged on the user id) ----------------------------------------------
KEY_RECS = "recs:{{{user_id}}}"                   # JSON {products, scores, reasons, model_version, updated_at}
KEY_RECS_MODEL = "recs:{model_id}:{{{user_id}}}"  # same, for a non-LIVE model in an A/B test
KEY_ANSWER = "answer:{{{user_id}}}"               # the final Tier-1 answer of recs:{user_id} (serving_answer)
KEY_ANSWER_MODEL = "answer:{model_id}:{{{user_id}}}"  # same, of recs:<model>:{user_id}
KEY_USER_EMBEDDING = "embedding:{{{user_id}}}"    # JSON {model_version, vector}
KEY_SESSION = "session:{{{user_id}}}"             # hash: recent categories / viewed / purchased
KEY_AB_ASSIGNMENT = "ab_test:{{{user_id}}}"       # JSON {test_id, model_id, arm}
KEY_USER_EVENTS = "user:events:{{{user_id}}}"     # integer: the user's event count (personalisation threshold)
KEY_PURCHASES = "purchases:{{{user_id}}}"         # JSON [[product_id, last ms, times], ...]: buy it again's input

# --- shared keys ----------------------------------------------------------------------------
KEY_PRODUCT_EMBEDDING = "embedding:product:{product_id}"  # JSON {model_version, vector}
KEY_TRENDING = "trending:global"                  # JSON {products, scores, popularity, updated_at}
KEY_NEW_ARRIVALS = "trending:new_arrivals"        # JSON {products, scores, popularity, updated_at}
KEY_BESTSELLERS = "bestsellers:{category}"        # JSON {products, scores, popularity, updated_at}
KEY_CATEGORIES = "catalog:categories"             # JSON list of known categories
KEY_BOUGHT_TOGETHER = "bought_together:{product_id}"  # JSON {products, scores, together, updated_at}
KEY_REPURCHASE = "repurchase:categories"          # JSON {categories: {category: {interval_days, repeats, rate}}, ...}
KEY_IMPRESSIONS = "stream:impressions"            # stream: one entry per recommendation answer
# integer: entries the flusher deleted after writing them. Its hash tag is the stream's whole name, so both
# keys share a Redis Cluster slot (the flusher's acknowledge script and stream_counts touch both at once)
KEY_IMPRESSIONS_DELETED = "{stream:impressions}:deleted"
LEGACY_IMPRESSIONS_DELETED = "stream:impressions:deleted"  # its name before the hash tag: moved by the flusher
KEY_RATE_LIMIT = "ratelimit:{name}"               # hash {tokens, ts}: the token bucket of one API key name
KEY_PAGE = "page:{request_id}"                    # JSON {u: user_id, p: [product ids served so far]} (paging)
KEY_ADMIN_ATTEMPTS = "admin_attempts:{address}"   # hash {tokens, ts}: admin token attempts of one client address
IMPRESSIONS_GROUP = "impression-flusher"          # the stream's consumer group


def recs_key(user_id: int, model_id: str | None = None) -> str:
    """``recs:{user_id}``, or ``recs:<model_id>:{user_id}`` for a model that is not LIVE."""
    if model_id:
        return KEY_RECS_MODEL.format(model_id=model_id, user_id=user_id)
    return KEY_RECS.format(user_id=user_id)


def admin_attempts_key(address: str) -> str:
    """``admin_attempts:{address}``: the bucket of admin token checks from one client address."""
    return KEY_ADMIN_ATTEMPTS.format(address=address)


def answer_key(user_id: int, model_id: str | None = None) -> str:
    """``answer:{user_id}``, or ``answer:<model_id>:{user_id}``: the answer of ``recs_key(...)``."""
    if model_id:
        return KEY_ANSWER_MODEL.format(model_id=model_id, user_id=user_id)
    return KEY_ANSWER.format(user_id=user_id)


def session_key(user_id: int) -> str:
    return KEY_SESSION.format(user_id=user_id)


def events_key(user_id: int) -> str:
    return KEY_USER_EVENTS.format(user_id=user_id)


def ab_key(user_id: int) -> str:
    return KEY_AB_ASSIGNMENT.format(user_id=user_id)


def user_embedding_key(user_id: int) -> str:
    return KEY_USER_EMBEDDING.format(user_id=user_id)


def page_key(request_id: str) -> str:
    """``page:{request_id}``: what one ``/recommendations`` answer and the pages before it served (``after=``)."""
    return KEY_PAGE.format(request_id=request_id)


def purchases_key(user_id: int) -> str:
    """``purchases:{user_id}``: the user's purchases as buy it again reads them (``recsys.serving.buy_again``)."""
    return KEY_PURCHASES.format(user_id=user_id)


def bought_together_key(product_id: int) -> str:
    """``bought_together:{product_id}``: the product's co-purchases (``recsys.ranking.bought_together``)."""
    return KEY_BOUGHT_TOGETHER.format(product_id=product_id)


def list_keys() -> list[str]:
    """The fallback lists read first (``category_keys`` of the categories found next)."""
    return [KEY_TRENDING, KEY_NEW_ARRIVALS, KEY_CATEGORIES]


def category_keys(categories: Sequence[str]) -> list[str]:
    return [KEY_BESTSELLERS.format(category=c) for c in categories]


# --- values -----------------------------------------------------------------------------------
def recs_payload(products: Sequence[int], scores: Sequence[float], reasons: Sequence[str] | None,
                 model_version: str | None, updated_at: str, *, sequence: str | None = None) -> dict:
    """The JSON value of ``recs:{user_id}``; ``sequence``: a real-time model's list holds the key of the
    recent sequence it was made for (``seq``)."""
    payload = {"products": list(products), "scores": list(scores), "reasons": list(reasons or []),
               "model_version": model_version, "updated_at": updated_at}
    if sequence is not None:
        payload["seq"] = sequence
    return payload


def encode_recs(payload: dict) -> bytes:
    return orjson.dumps(payload)


# --- answer:{user}: the final Tier-1 answer, in the bytes the API sends -------------------------
# One JSON header line, then the items as the response encodes them, joined by ",":
#   {"basis": hex, "at": epoch ms, "model": str|null, "products": [ids], "ends": [byte offsets]}\n
#   {"product_id":1,"score":0.9,"reason":"..."},{"product_id":...}
# ``ends[i]`` is where item i ends, so the answer of n items is a prefix of the body (the re-ranked
# order does not depend on n: ``tiers.finish`` keeps the first n of one order).
class CachedAnswer:
    """A decoded ``answer:`` value: its header, and the item bytes (not parsed)."""

    __slots__ = ("basis", "at_ms", "model_version", "products", "ends", "body")

    def __init__(self, header: dict, body: bytes):
        self.basis: str = header["basis"]
        self.at_ms: int = int(header["at"])
        self.model_version: str | None = header.get("model")
        self.products: list[int] = header["products"]
        self.ends: list[int] = header["ends"]
        self.body = body

    def items_bytes(self, n: int) -> bytes:
        """The first ``n`` items as the response's ``items`` array holds them (without the brackets)."""
        if not self.ends or n <= 0:
            return b""
        return self.body[:self.ends[min(n, len(self.ends)) - 1]]


def encode_answer(items: Sequence[dict], *, basis: str, at_ms: int, model_version: str | None) -> bytes:
    """``items``: ``{"product_id", "score", "reason"}`` dicts, in the answer's order."""
    parts = [orjson.dumps(item) for item in items]
    ends, end = [], -1
    for part in parts:
        end += len(part) + 1
        ends.append(end)
    header = {"basis": basis, "at": int(at_ms), "model": model_version,
              "products": [int(item["product_id"]) for item in items], "ends": ends}
    return orjson.dumps(header) + b"\n" + b",".join(parts)


def decode_answer(raw: bytes | None) -> CachedAnswer | None:
    """The answer of an ``answer:`` value; None when missing or not in this format (an older release)."""
    if not raw:
        return None
    head, sep, body = raw.partition(b"\n")
    if not sep:
        return None
    try:
        header = orjson.loads(head)
        return CachedAnswer(header, body)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def recommendations_body(items: bytes, model_version: str | None, source: str, request_id: str) -> bytes:
    """The ``GET /recommendations`` JSON from already encoded items: the bytes ``orjson.dumps`` gives
    for ``{"items": [...], "model_version", "source", "request_id"}``."""
    return b"".join((b'{"items":[', items, b'],"model_version":', orjson.dumps(model_version),
                     b',"source":', orjson.dumps(source), b',"request_id":', orjson.dumps(request_id), b"}"))

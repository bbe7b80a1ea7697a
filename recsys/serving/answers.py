"""The cached final answer of Tier 1 (``answer:{user_id}``): when it still holds, and how it is built.

An answer is the re-ranked list ``tiers.personalized`` gives for one model list, one session and
one serving context, its first ``ANSWER_ITEMS`` items encoded as the API sends them
(``recsys.keys.encode_answer``). It holds while everything it was computed from is unchanged,
which its ``basis`` (a digest) records:
- the serving context (``context_digest``): the catalog's ranking attributes, the bestsellers
  that cross-sell draws from, the re-ranking rules and the settings the tier reads (``RECSYS_REASONS``
  among them: an answer of one reasons mode never serves another);
- the model list: the exact bytes of ``recs:{user_id}`` (a new precompute or an on-the-fly
  score changes them);
- the session fields Tier 1 reads (``cats``, ``bought``, ``seen`` of ``session:{user_id}``) and the
  recent sequence (``seq``): a real-time model's list is re-scored the moment it changes
  (``recsys.serving.realtime``), so an answer never outlives the sequence it was made for.
and while it is younger than ``RECSYS_ANSWER_MAX_AGE_SECONDS``: the freshness boost decays with
the products' age, so an answer's scores are those of its computation time (0 = never cached).
Anything else (a new event in a category, a purchase, a catalog refresh that changed stock) is
a mismatch: the API re-ranks as it always did and writes the new answer back.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence

import orjson

from recsys.keys import encode_answer
from recsys.ranking.merch_rules import RuleSet
from recsys.ranking.rerank import Candidate, RerankConfig
from recsys.serving.catalog import CatalogSnapshot
from recsys.serving.fallbacks import FallbackLists
from recsys.serving.tiers import ServeContext, personalized

MAX_NUM_ITEMS = 100  # the longest list a request may ask for (GET /recommendations' num_items)
ANSWER_ITEMS = MAX_NUM_ITEMS  # an answer holds as many items as a request may ask for
SESSION_FIELDS = ("cats", "bought", "seen", "seq")  # what Tier 1 (and real-time scoring) reads
_SESSION_KEYS = tuple((name.encode(), name) for name in SESSION_FIELDS)


def context_digest(catalog: CatalogSnapshot, lists: FallbackLists, rules: RerankConfig, new_days: int,
                   seen_types: Sequence[str], reasons: str, merch: str = "") -> bytes:
    """What Tier 1 reads besides the list and the session, as a digest (worked out once per snapshot); ``reasons``
    (RECSYS_REASONS) is in it, so an answer made under one reasons mode is never served under another; ``merch``
    (``merch_key``): the merchandising rules live, so a rule created, changed, expired or entering its window
    makes every cached answer re-ranked."""
    h = hashlib.blake2b(digest_size=16)
    h.update(orjson.dumps([(p.product_id, p.name, p.category, p.margin, p.in_stock, p.created_at_ms)
                           for _, p in sorted(catalog.products.items())]))
    h.update(orjson.dumps({c: lst.products for c, lst in sorted(lists.bestsellers.items())}))
    h.update(orjson.dumps(dataclasses.asdict(rules), option=orjson.OPT_SORT_KEYS))
    h.update(orjson.dumps([int(new_days), list(seen_types), reasons]))
    if merch:
        h.update(merch.encode())
    return h.digest()


def merch_key(rules: RuleSet, now_ms: int) -> str:
    """The rules' part of the answer context: their version and the ids live now ("" without rules)."""
    return f"{rules.version}|{rules.live_ids(now_ms)}" if rules.rules else ""


def _as_bytes(value) -> bytes:
    if value is None:
        return b"\x00"  # a missing field differs from an empty one
    return value if isinstance(value, bytes) else str(value).encode()


def answer_basis(context: bytes, recs_raw: bytes, session_raw: Mapping | None) -> str:
    """The digest an answer is valid for: context, the model list's bytes, the session fields Tier 1 reads."""
    h = hashlib.blake2b(context, digest_size=16)
    h.update(recs_raw)
    raw = session_raw or {}
    for key_bytes, key_text in _SESSION_KEYS:
        h.update(b"\x1e")
        h.update(_as_bytes(raw.get(key_bytes, raw.get(key_text))))
    return h.hexdigest()


def response_items(items: Sequence[Candidate], reasons: bool = True) -> list[dict]:
    """The ``items`` of a ``GET /recommendations`` answer (``reasons=False``: without their reasons)."""
    if not reasons:
        return [{"product_id": c.product_id, "score": c.score} for c in items]
    return [{"product_id": c.product_id, "score": c.score, "reason": c.reason} for c in items]


def items_without_reasons(items_bytes: bytes) -> bytes:
    """A cached answer's encoded items (``CachedAnswer.items_bytes``) without their reasons."""
    items = orjson.loads(b"[" + items_bytes + b"]")
    return orjson.dumps([{"product_id": i["product_id"], "score": i["score"]} for i in items])[1:-1]


def build_answer(ctx: ServeContext, products: Sequence[int], scores: Sequence[float],
                 reasons: Sequence[str] | None, model_version: str | None, basis: str) -> tuple[list[Candidate], bytes]:
    """Tier 1 of a model list, ``ANSWER_ITEMS`` long, and its ``answer:`` value."""
    items = personalized(ctx, products, scores, reasons, ANSWER_ITEMS)
    return items, encode_answer(response_items(items), basis=basis, at_ms=ctx.now_ms, model_version=model_version)

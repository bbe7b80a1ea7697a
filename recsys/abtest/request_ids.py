"""Server-signed request ids: the only ids that may credit a click to an A/B impression.

A request id is 32 hex characters: 16 random, then the first 16 of
``HMAC-SHA256(secret, "recsys-request-id:" + random)``. The API issues them
(``X-Request-ID``, the ``request_id`` of every answer, the impression's id); the
A/B results verify the ``request_id`` that a click or purchase names, and an event
naming an id the server did not sign is kept but attributed to no arm. The
secret is ``RECSYS_REQUEST_ID_SECRET``, the same for the API and Airflow;
changing it leaves the ids issued before unverifiable (their clicks count for no arm).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_DOMAIN = b"recsys-request-id:"
RANDOM_CHARS = 16
LENGTH = 2 * RANDOM_CHARS
_HEX = frozenset("0123456789abcdef")


class RequestIdSigner:
    def __init__(self, secret: str):
        self._key = secret.encode()

    def _mac(self, random_part: str) -> str:
        return hmac.new(self._key, _DOMAIN + random_part.encode(), hashlib.sha256).hexdigest()[:LENGTH - RANDOM_CHARS]

    def new(self) -> str:
        random_part = secrets.token_hex(RANDOM_CHARS // 2)
        return random_part + self._mac(random_part)

    def verify(self, request_id: object) -> bool:
        """True for an id this secret signed; False for anything else (None, forged, malformed)."""
        if not isinstance(request_id, str) or len(request_id) != LENGTH or not _HEX.issuperset(request_id):
            return False
        random_part, mac = request_id[:RANDOM_CHARS], request_id[RANDOM_CHARS:]
        return hmac.compare_digest(mac, self._mac(random_part))

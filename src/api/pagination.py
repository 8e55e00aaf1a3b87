"""Opaque, signed keyset cursors: a tampered cursor or one from another list is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec

from domain.errors import InvalidInput

SIGNATURE_BYTES = 16

SortKey = tuple[int, str]
"""The last row of a page: its sort value and its id, the tie-breaker."""


class Cursors:
    """Encodes a page's last sort key with the list it belongs to, and checks it on the way back."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, scope: str, key: SortKey) -> str:
        payload = msgspec.json.encode([scope, key])
        return base64.urlsafe_b64encode(payload + self._sign(payload)).decode().rstrip("=")

    def decode(self, scope: str, cursor: str) -> SortKey:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, signature = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
            if not hmac.compare_digest(signature, self._sign(payload)):
                raise ValueError("bad signature")
            cursor_scope, key = msgspec.json.decode(payload, type=tuple[str, SortKey])
        except (ValueError, msgspec.DecodeError) as error:
            raise InvalidInput("cursor", "not a cursor this list gave out") from error
        if cursor_scope != scope:
            raise InvalidInput("cursor", "not a cursor this list gave out")
        return key

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:SIGNATURE_BYTES]

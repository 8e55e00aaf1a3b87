"""`Idempotency-Key` on every API POST: a repeat gets the first answer, from a record kept in the store.

The record lives in the deployment's own database, so every server process and every restart
agrees on it. A request with the header claims its key (a pending row) before it runs and stores
its answer afterwards; a repeat with the same bytes replays that answer, a repeat with other bytes
is 409, and a repeat that arrives while the first is still running waits for it (bounded).
Requests without the header pass straight through.
"""

from api.idempotency.openapi import IdempotencyPlugin

__all__ = ["IdempotencyPlugin"]

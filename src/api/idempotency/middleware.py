"""The middleware: claims a keyed API POST's key, runs it once, and replays its kept answer to repeats."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from anyio import to_thread
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from api.errors import FieldError, send_problem
from api.idempotency.capture import CapturedAnswer, read_body, send_answer
from api.idempotency.keys import API_PREFIX, HEADER, answer_subject, bad_key_detail, valid_key
from api.scopes import in_scope, principal_of
from store.idempotency import (
    Answer,
    Busy,
    Claimed,
    Fingerprint,
    IdempotencyRecords,
    Mismatch,
    Outcome,
    Replay,
)

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from composition.services import Services

WAIT_SECONDS = 10.0
"""How long a simultaneous repeat waits for the first before it answers 409 "in progress"."""
PURGE_INTERVAL_SECONDS = 60.0
NOT_REMEMBERED = frozenset({401, 403, 408, 425, 429})
"""4xx answers about the caller or the moment, not the request: the retry runs again, like a 5xx."""

log = logging.getLogger("workflow_service")


@dataclass(frozen=True)
class KeyedRequest:
    """One keyed request: whose key (the project), the key, and what it was sent with."""

    scope: str
    key: str
    fingerprint: Fingerprint


def remembered(status: int) -> bool:
    """2xx and the 4xx that describe the request are kept; 5xx and the transient 4xx are not."""
    return status < 500 and status not in NOT_REMEMBERED


class IdempotencyMiddleware(ASGIMiddleware):
    """One place for every API POST; a request without the header costs one scan of its headers."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._next_purge = 0.0

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope.get("method") != "POST" or not scope["path"].startswith(API_PREFIX):
            await next_app(scope, receive, send)
            return
        keys = [value for name, value in scope["headers"] if name == b"idempotency-key"]
        if not keys:
            await next_app(scope, receive, send)
            return
        services: Services = scope["app"].state.services
        project_id = await to_thread.run_sync(project_of, services, scope)
        if (
            project_id is None
        ):  # authentication answers 401, its guard 403; nothing is replayed to such a caller
            await next_app(scope, receive, send)
            return
        key = valid_key(keys)
        if key is None:
            await send_problem(
                send, 400, "invalid-input", bad_key_detail(), [FieldError(HEADER, bad_key_detail())]
            )
            return
        body, receive = await read_body(receive)
        if body is None:  # too large or cut off: the app answers that, and nothing is claimed
            await next_app(scope, receive, send)
            return
        records = IdempotencyRecords(services.database, services.workflows.data_keys, self.clock)
        request = KeyedRequest(
            f"project:{project_id}", key, Fingerprint(scope["path"], hashlib.sha256(body).hexdigest())
        )
        await self._serve(records, request, scope, receive, send, next_app)

    async def _serve(
        self,
        records: IdempotencyRecords,
        request: KeyedRequest,
        scope: Scope,
        receive: Receive,
        send: Send,
        next_app: ASGIApp,
    ) -> None:
        outcome = await self._claim(records, request)
        if isinstance(outcome, Replay):
            await send_answer(send, outcome.answer)
        elif isinstance(outcome, Mismatch):
            await send_problem(
                send,
                409,
                "idempotency-key-reused",
                f"this {HEADER} was first used with a different request (other body bytes or another route)",
            )
        elif isinstance(outcome, Busy):
            await send_problem(
                send,
                409,
                "idempotency-key-in-progress",
                f"a request with this {HEADER} is still being processed; retry shortly",
                headers=[("retry-after", "1")],
            )
        else:
            await self._run(records, request, outcome.owner, scope, receive, send, next_app)

    async def _claim(self, records: IdempotencyRecords, request: KeyedRequest) -> Outcome:
        """Claim the key; while another request holds it, wait (bounded) for its answer."""
        deadline = time.monotonic() + WAIT_SECONDS
        pause = 0.02
        while True:
            outcome = await to_thread.run_sync(records.claim, request.scope, request.key, request.fingerprint)
            if isinstance(outcome, Claimed):
                await self._purge_now_and_then(records)
            if not isinstance(outcome, Busy) or time.monotonic() + pause > deadline:
                return outcome
            await anyio.sleep(pause)
            pause = min(pause * 2, 0.25)

    async def _run(
        self,
        records: IdempotencyRecords,
        request: KeyedRequest,
        owner: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        next_app: ASGIApp,
    ) -> None:

        async def settle(answer: Answer) -> None:
            if remembered(answer.status):
                await to_thread.run_sync(
                    records.complete,
                    request.scope,
                    request.key,
                    owner,
                    answer,
                    answer_subject(request.fingerprint.path, answer.body),
                )
            else:
                await to_thread.run_sync(records.release, request.scope, request.key, owner)

        capture = CapturedAnswer(send, settle)
        try:
            await next_app(scope, receive, capture.send)
        finally:
            if not capture.settled:  # no answer went out (cancelled, disconnected): free the key
                with anyio.CancelScope(shield=True):
                    await quietly(records.release, request.scope, request.key, owner)

    async def _purge_now_and_then(self, records: IdempotencyRecords) -> None:
        """At most once a minute per process, and only on requests that use keys at all."""
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + PURGE_INTERVAL_SECONDS
        await quietly(records.purge)


def project_of(services: Services, scope: Scope) -> str | None:
    """The project of the request's API key, or None when the key is missing, unknown, revoked or expired,
    or when its scope does not allow the route (a read key never gets a replay of a write)."""
    principal = principal_of(services.accounts, scope)
    return None if principal is None or not in_scope(principal, scope) else principal.project_id


async def quietly(function: Callable[..., Any], *args: Any) -> None:
    """Housekeeping that may fail (store unreachable) without failing the request."""
    try:
        await to_thread.run_sync(function, *args)
    except Exception:
        log.exception("idempotency housekeeping failed")

"""`Idempotency-Key` on every API POST: a repeat gets the first answer, from a record kept in the store.

The record lives in the deployment's own database, so every server process and every restart
agrees on it. A request with the header claims its key (a pending row) before it runs and stores
its answer afterwards; a repeat with the same bytes replays that answer, a repeat with other bytes
is 409, and a repeat that arrives while the first is still running waits for it (bounded).
Requests without the header pass straight through.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from anyio import to_thread
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.openapi.spec import Operation, Parameter, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import InitPlugin, ReceiveRoutePlugin
from litestar.routes import HTTPRoute

from api.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, TITLES, FieldError, Problem
from api.scopes import in_scope, principal_of
from api.settings import MAX_BODY_BYTES
from domain.database import Database
from domain.sealing import DataKeys

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from litestar.routes import BaseRoute
    from litestar.types import ASGIApp, HTTPRequestEvent, Message, Receive, ReceiveMessage, Scope, Send

    from api.backend import Backend

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
API_PREFIX = "/api/v1/"
"""Only API-keyed routes: the keyless upload route already has a single-use URL as its key."""

RETENTION_SECONDS = 24 * 60 * 60
"""A record older than this is ignored (the key may be used afresh) and purged."""
PENDING_SECONDS = 60.0
"""A claim whose request has not answered after this long is taken to be abandoned (a crash)."""
WAIT_SECONDS = 10.0
"""How long a simultaneous repeat waits for the first before it answers 409 "in progress"."""
PURGE_INTERVAL_SECONDS = 60.0
PURGE_BATCH = 1000

KEPT_HEADERS = frozenset({"content-type", "etag", "location", "cache-control"})
"""The response headers a replay repeats; the rest (date, request id, length) belong to each answer."""
NOT_REMEMBERED = frozenset({401, 403, 408, 425, 429})
"""4xx answers about the caller or the moment, not the request: the retry runs again, like a 5xx."""

IDEMPOTENCY_DDL = (
    "CREATE TABLE IF NOT EXISTS idempotency_keys ("
    " scope TEXT NOT NULL, idempotency_key TEXT NOT NULL,"
    " request_path TEXT NOT NULL, body_sha256 TEXT NOT NULL,"
    " owner TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
    " status INTEGER, headers TEXT, body BYTEA, sealed_for TEXT,"
    " PRIMARY KEY (scope, idempotency_key))",
    "CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at)",
)

log = logging.getLogger("workflow_service")


@dataclass(frozen=True)
class Fingerprint:
    """What "the same request" means: the same route and the same body bytes."""

    path: str
    body_sha256: str


@dataclass(frozen=True)
class Answer:
    """A response as a replay repeats it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claimed:
    """This request owns the key: it runs, then records or releases its answer."""

    owner: str


@dataclass(frozen=True)
class Replay:
    answer: Answer


class Mismatch:
    """The key was first used for another request (other bytes or another route)."""


class Busy:
    """The first request with this key is still running."""


Outcome = Claimed | Replay | Mismatch | Busy


class IdempotencyRecords:
    """The `idempotency_keys` table: one row per (project, key), pending until its answer is stored."""

    def __init__(self, database: Database, keys: DataKeys, clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.keys = keys
        self.clock = clock

    def claim(self, scope: str, key: str, fingerprint: Fingerprint) -> Outcome:
        """Take the key, or say what its existing record means for this request."""
        owner = uuid.uuid4().hex
        now = self.clock()
        with self.database.transaction() as tx:
            inserted = tx.execute(
                "INSERT INTO idempotency_keys"
                " (scope, idempotency_key, request_path, body_sha256, owner, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, idempotency_key) DO NOTHING RETURNING owner",
                (scope, key, fingerprint.path, fingerprint.body_sha256, owner, now),
            ).fetchall()
            if inserted:
                return Claimed(owner)
            row = tx.execute(
                "SELECT request_path, body_sha256, owner, created_at, status, headers, body, sealed_for"
                " FROM idempotency_keys WHERE scope = ? AND idempotency_key = ?",
                (scope, key),
            ).fetchone()
            if row is None:
                return Busy()  # released between the two statements: the caller asks again
            if self._stale(row, now):
                return self._take_over(tx, scope, key, fingerprint, row["owner"], owner, now)
        if (row["request_path"], row["body_sha256"]) != (fingerprint.path, fingerprint.body_sha256):
            return Mismatch()
        if row["status"] is None:
            return Busy()
        body = self._unseal(scope, key, row["sealed_for"], bytes(row["body"]))
        if body is None:  # its workflow was erased, and the answer with it: the request runs afresh
            self.release(scope, key, row["owner"])
            return Busy()
        headers = [(name, value) for name, value in json.loads(row["headers"])]
        return Replay(Answer(row["status"], headers, body))

    def complete(self, scope: str, key: str, owner: str, path: str, answer: Answer) -> None:
        """Store the answer, sealed with the data key of the workflow it shows (erasure erases it)."""
        body, sealed_for = answer.body, answer_subject(path, answer.body)
        if sealed_for is not None:
            data_key = self.keys.key_for(sealed_for, create=False)
            if data_key is None:  # erased meanwhile: keep nothing
                self.release(scope, key, owner)
                return
            nonce = os.urandom(12)
            body = nonce + AESGCM(data_key).encrypt(nonce, body, _context(scope, key))
        with self.database.transaction() as tx:
            tx.execute(
                "UPDATE idempotency_keys SET status = ?, headers = ?, body = ?, sealed_for = ?"
                " WHERE scope = ? AND idempotency_key = ? AND owner = ?",
                (answer.status, json.dumps(answer.headers), body, sealed_for, scope, key, owner),
            )

    def _unseal(self, scope: str, key: str, sealed_for: str | None, body: bytes) -> bytes | None:
        if sealed_for is None:
            return body
        data_key = self.keys.key_for(sealed_for, create=False)
        if data_key is None:
            return None
        try:
            return AESGCM(data_key).decrypt(body[:12], body[12:], _context(scope, key))
        except InvalidTag:
            return None

    def release(self, scope: str, key: str, owner: str) -> None:
        """Forget a claim whose answer is not kept, so that the retry runs again."""
        with self.database.transaction() as tx:
            tx.execute(
                "DELETE FROM idempotency_keys WHERE scope = ? AND idempotency_key = ? AND owner = ?",
                (scope, key, owner),
            )

    def purge(self) -> None:
        """Delete a bounded batch of expired records, oldest first (uses the created_at index)."""
        with self.database.transaction() as tx:
            tx.execute(
                "DELETE FROM idempotency_keys WHERE (scope, idempotency_key) IN ("
                " SELECT scope, idempotency_key FROM idempotency_keys WHERE created_at < ?"
                " ORDER BY created_at LIMIT ?)",
                (self.clock() - RETENTION_SECONDS, PURGE_BATCH),
            )

    def _stale(self, row: Any, now: float) -> bool:
        age = now - float(row["created_at"])
        return age > RETENTION_SECONDS or (row["status"] is None and age > PENDING_SECONDS)

    def _take_over(
        self, tx: Any, scope: str, key: str, fingerprint: Fingerprint, previous: str, owner: str, now: float
    ) -> Outcome:
        """Reuse an expired or abandoned record; only one of several racing requests wins it."""
        won = tx.execute(
            "UPDATE idempotency_keys SET request_path = ?, body_sha256 = ?, owner = ?, created_at = ?,"
            " status = NULL, headers = NULL, body = NULL, sealed_for = NULL"
            " WHERE scope = ? AND idempotency_key = ? AND owner = ? RETURNING owner",
            (fingerprint.path, fingerprint.body_sha256, owner, now, scope, key, previous),
        ).fetchall()
        return Claimed(owner) if won else Busy()


def answer_subject(path: str, body: bytes) -> str | None:
    """The workflow an answer shows (a workflow document, a run, a permanent delete), if any."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    subject = document.get("workflowId")
    if subject is None and path.startswith(f"{API_PREFIX}workflows/"):
        subject = document.get("id")
    return subject if isinstance(subject, str) else None


def _context(scope: str, key: str) -> bytes:
    """Binds a sealed answer to its record, so it cannot be replayed under another key."""
    return f"idempotency:{scope}:{key}".encode()


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
        backend: Backend = scope["app"].state.backend
        project_id = await to_thread.run_sync(project_of, backend, scope)
        if project_id is None:  # the gate answers 401 or 403; nothing is replayed to such a caller
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
        records = IdempotencyRecords(backend.database, backend.workflows.data_keys, self.clock)
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
                    records.complete, request.scope, request.key, owner, request.fingerprint.path, answer
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


@dataclass(frozen=True)
class KeyedRequest:
    """One keyed request: whose key (the project), the key, and what it was sent with."""

    scope: str
    key: str
    fingerprint: Fingerprint


class CapturedAnswer:
    """Passes a response on while keeping a copy; the last body part waits until the copy is stored."""

    def __init__(self, send: Send, on_complete: Callable[[Answer], Awaitable[None]]) -> None:
        self._send = send
        self._on_complete = on_complete
        self._status = 0
        self._headers: list[tuple[str, str]] = []
        self._chunks: list[bytes] = []
        self.settled = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._status = message["status"]
            self._headers = [
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in message.get("headers", [])
                if name.decode("latin-1").lower() in KEPT_HEADERS
            ]
        elif message["type"] == "http.response.body":
            self._chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                try:
                    await self._on_complete(Answer(self._status, self._headers, b"".join(self._chunks)))
                    self.settled = True
                except Exception:  # the write itself succeeded: answer it; the claim expires on its own
                    log.exception("could not record the answer of an %s request", HEADER)
        await self._send(message)


def project_of(backend: Backend, scope: Scope) -> str | None:
    """The project of the request's API key, or None when the key is missing, unknown, revoked or expired,
    or when its scope does not allow the route (a read key never gets a replay of a write)."""
    principal = principal_of(backend.accounts, scope)
    return None if principal is None or not in_scope(principal, scope) else principal.project_id


def valid_key(values: list[bytes]) -> str | None:
    """The one key sent, when it is 1..255 visible ASCII characters (inner spaces allowed)."""
    if len(values) != 1:
        return None
    key = values[0].decode("latin-1")
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        return None
    return key


def bad_key_detail() -> str:
    return f"send one {HEADER} of 1..{MAX_KEY_LENGTH} visible ASCII characters"


async def read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None past the API's limit, or when the client left) and a receive replaying it."""
    messages: list[ReceiveMessage] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, replaying(messages, receive)
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY_BYTES:
            return None, replaying(messages, receive)
        if not message.get("more_body", False):
            body = b"".join(chunks)
            whole: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
            return body, replaying([whole], receive)


def replaying(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> ReceiveMessage:
        return pending.pop(0) if pending else await receive()

    return replay


async def send_answer(send: Send, answer: Answer) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    headers += [(b"content-length", str(len(answer.body)).encode()), (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


async def send_problem(
    send: Send,
    status: int,
    slug: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    problem = Problem(
        type=PROBLEM_BASE + slug,
        title=TITLES[status][1],
        status=status,
        detail=detail,
        errors=msgspec.UNSET if errors is None else errors,
    )
    answer = Answer(status, [("content-type", PROBLEM_MEDIA_TYPE), *headers], msgspec.json.encode(problem))
    raw = [(name.encode(), value.encode()) for name, value in answer.headers]
    raw.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


async def quietly(function: Callable[..., Any], *args: Any) -> None:
    """Housekeeping that may fail (store unreachable) without failing the request."""
    try:
        await to_thread.run_sync(function, *args)
    except Exception:
        log.exception("idempotency housekeeping failed")


KEY_PARAMETER = Parameter(
    name=HEADER,
    param_in="header",
    required=False,
    description="Makes a retry safe: the same key and the same body bytes within 24 hours answer the "
    "first response again (nothing new is stored); the same key with another body is 409. "
    "Keys are per project.",
    schema=Schema(
        type=OpenAPIType.STRING, min_length=1, max_length=MAX_KEY_LENGTH, pattern="^[!-~](?:[ -~]*[!-~])?$"
    ),
)


@dataclass
class KeyedOperation(Operation):
    """An API POST's OpenAPI operation, declaring the Idempotency-Key header."""

    def __post_init__(self) -> None:
        self.parameters = [*(self.parameters or []), KEY_PARAMETER]


class IdempotencyPlugin(InitPlugin, ReceiveRoutePlugin):
    """Registers the middleware and declares the header on every API POST in the OpenAPI document."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.append(IdempotencyMiddleware(self.clock))
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(API_PREFIX):
            return
        for handler in route.route_handlers:
            if "POST" in handler.http_methods and handler.operation_class is Operation:
                handler.operation_class = KeyedOperation

"""The `idempotency_keys` table: claims, kept answers (sealed, so erasure erases them), expiry."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from store.database import Database
from store.sealing import DataKeys

RETENTION_SECONDS = 24 * 60 * 60
"""A record older than this is ignored (the key may be used afresh) and purged."""
PENDING_SECONDS = 60.0
"""A claim whose request has not answered after this long is taken to be abandoned (a crash)."""
PURGE_BATCH = 1000

IDEMPOTENCY_DDL = (
    "CREATE TABLE IF NOT EXISTS idempotency_keys ("
    " scope TEXT NOT NULL, idempotency_key TEXT NOT NULL,"
    " request_path TEXT NOT NULL, body_sha256 TEXT NOT NULL,"
    " owner TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
    " status INTEGER, headers TEXT, body BYTEA, sealed_for TEXT,"
    " PRIMARY KEY (scope, idempotency_key))",
    "CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at)",
)


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

    def complete(self, scope: str, key: str, owner: str, answer: Answer, sealed_for: str | None) -> None:
        """Store the answer, sealed with the data key of `sealed_for`, the workflow it shows (erasure
        erases it with the workflow); None when it shows none."""
        body = answer.body
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


def _context(scope: str, key: str) -> bytes:
    """Binds a sealed answer to its record, so it cannot be replayed under another key."""
    return f"idempotency:{scope}:{key}".encode()

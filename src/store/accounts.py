"""Projects and their API keys: who may call the service, and which project each call acts in."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from domain.errors import NotFound
from domain.workflow import Actor
from store.database import Database

KeyScope = Literal["read", "write", "runner"]
"""What a key may call: `read` only reads, `runner` reads and reports runs, `write` everything."""
KEY_SCOPES: tuple[KeyScope, ...] = get_args(KeyScope)
DEFAULT_SCOPE: KeyScope = "write"

ACCOUNTS_DDL = (
    "CREATE TABLE IF NOT EXISTS projects ("
    " project_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS api_keys ("
    " key_id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects (project_id),"
    " name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,"
    " revoked_at TEXT, scope TEXT NOT NULL DEFAULT 'write', expires_at TEXT, last_used_at TEXT)",
)

ADDED_KEY_COLUMNS = (
    ("scope", "TEXT NOT NULL DEFAULT 'write'"),
    ("expires_at", "TEXT"),
    ("last_used_at", "TEXT"),
)
"""Columns `api_keys` gained after its first release; an older store gets them on start."""

KEY_PREFIX = "wfs_"

USE_RECORD_INTERVAL_SECONDS = 60.0
"""`last_used_at` is written at most this often per process (every key used since, in one transaction),
and at once for a key's first use in the process, so most requests write nothing."""
KEY_CACHE_SECONDS = 5.0
"""How long a process answers for a key from memory before reading its row again: a key revoked by
another process (the CLI, another server) stops working within this; one revoked through this
process's `Accounts`, and one past its expiry, at once."""
CACHED_KEYS = 10_000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a live API key and the project it belongs to."""

    project_id: str
    key_id: str
    key_name: str
    scope: KeyScope

    @property
    def actor(self) -> Actor:
        return {"keyId": self.key_id, "keyName": self.key_name}


@dataclass(frozen=True)
class ApiKey:
    """An API key as listed: never its secret, which is shown once when it is created."""

    key_id: str
    project_id: str
    name: str
    scope: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class NewKey:
    """A key just created: the only moment its secret exists outside the caller's hands."""

    project_id: str
    key_id: str
    name: str
    secret: str
    scope: KeyScope = DEFAULT_SCOPE
    expires_at: datetime | None = None


def hash_secret(secret: str) -> str:
    """Keys are 256 random bits, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def add_missing_key_columns(database: Database) -> None:
    """Bring an `api_keys` table made by earlier code up to date: its keys become `write`, never expiring.

    Call it after ACCOUNTS_DDL, inside the schema lock; it changes nothing on an up-to-date table.
    """
    with database.transaction() as tx:
        present = _column_names(tx, database.dialect)
        for name, definition in ADDED_KEY_COLUMNS:
            if name not in present:
                tx.execute(f"ALTER TABLE api_keys ADD COLUMN {name} {definition}")


def _column_names(tx: Any, dialect: str) -> set[str]:
    if dialect == "sqlite":
        return {row["name"] for row in tx.execute("PRAGMA table_info(api_keys)").fetchall()}
    rows = tx.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = 'api_keys'"
    ).fetchall()
    return {row["column_name"] for row in rows}


def _expired(expires_at: str | None) -> bool:
    return expires_at is not None and datetime.fromisoformat(expires_at) <= datetime.now(UTC)


class Accounts:
    """Creates projects and keys, and resolves a bearer token to its principal."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._lock = threading.Lock()
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._uses: dict[str, str] = {}
        self._recorded: set[str] = set()
        self._next_record = time.monotonic() + USE_RECORD_INTERVAL_SECONDS

    def create_project(self, name: str) -> NewKey:
        project_id = uuid.uuid4().hex
        with self.database.transaction() as tx:
            tx.execute(
                "INSERT INTO projects (project_id, name, created_at) VALUES (?, ?, ?)",
                (project_id, name, _now()),
            )
        return self.create_key(project_id, name=f"{name} key")

    def ensure_default_project(self) -> NewKey | None:
        """Create the `default` project and its key when the store has no project at all."""
        with self.database.transaction(commit=False) as tx:
            if tx.execute("SELECT 1 FROM projects LIMIT 1").fetchone() is not None:
                return None
        return self.create_project("default")

    def create_key(
        self,
        project_id: str,
        name: str,
        scope: KeyScope = DEFAULT_SCOPE,
        expires_at: datetime | None = None,
    ) -> NewKey:
        """A new key; `expires_at` (timezone-aware) ends it like a revocation would."""
        if scope not in KEY_SCOPES:
            raise ValueError(f"a key's scope is one of {', '.join(KEY_SCOPES)}, not {scope!r}")
        expiry = None if expires_at is None else expires_at.astimezone(UTC)
        with self.database.transaction() as tx:
            found = tx.execute("SELECT 1 FROM projects WHERE project_id = ?", (project_id,)).fetchone()
            if found is None:
                raise NotFound(f"no project has id {project_id!r}")
            key_id = uuid.uuid4().hex[:16]
            secret = KEY_PREFIX + secrets.token_urlsafe(32)
            tx.execute(
                "INSERT INTO api_keys (key_id, project_id, name, key_hash, created_at, scope, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key_id,
                    project_id,
                    name,
                    hash_secret(secret),
                    _now(),
                    scope,
                    None if expiry is None else expiry.isoformat(),
                ),
            )
        return NewKey(project_id, key_id, name, secret, scope, expiry)

    def list_keys(self) -> list[ApiKey]:
        with self.database.transaction(commit=False) as tx:
            rows = tx.execute(
                "SELECT key_id, project_id, name, scope, created_at, last_used_at, expires_at, revoked_at"
                " FROM api_keys ORDER BY created_at, key_id"
            ).fetchall()
        return [
            ApiKey(
                key_id=row["key_id"],
                project_id=row["project_id"],
                name=row["name"],
                scope=row["scope"],
                created_at=row["created_at"],
                last_used_at=row["last_used_at"],
                expires_at=row["expires_at"],
                revoked_at=row["revoked_at"],
            )
            for row in rows
        ]

    def revoke_key(self, key_id: str) -> None:
        with self.database.transaction() as tx:
            row = tx.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL RETURNING key_id",
                (_now(), key_id),
            ).fetchone()
            if row is None:
                live = tx.execute("SELECT 1 FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
                if live is None:
                    raise NotFound(f"no API key has id {key_id!r}")
        with self._lock:
            for key_hash in [h for h, known in self._known.items() if known.principal.key_id == key_id]:
                del self._known[key_hash]

    def authenticate(self, secret: str) -> Principal | None:
        """The principal of a live key, or None for an unknown, revoked or expired one.

        A live key is answered from memory for KEY_CACHE_SECONDS after its row was read; an unknown
        one is never remembered, so a key made by another process works at once.
        """
        if not secret.startswith(KEY_PREFIX):
            return None
        key_hash = hash_secret(secret)
        now = time.monotonic()
        with self._lock:
            known = self._known.get(key_hash)
        if known is None or now >= known.until:
            known = self._read(key_hash, now)
        if known is None or _expired(known.expires_at):
            return None
        self._record_use(known.principal.key_id, now)
        return known.principal

    def _read(self, key_hash: str, now: float) -> _Known | None:
        with self.database.transaction(commit=False) as tx:
            row = tx.execute(
                "SELECT key_id, project_id, name, scope, expires_at FROM api_keys"
                " WHERE key_hash = ? AND revoked_at IS NULL",
                (key_hash,),
            ).fetchone()
        with self._lock:
            if row is None:
                self._known.pop(key_hash, None)
                return None
            principal = Principal(row["project_id"], row["key_id"], row["name"], row["scope"])
            known = _Known(principal, row["expires_at"], now + KEY_CACHE_SECONDS)
            self._known[key_hash] = known
            self._known.move_to_end(key_hash)
            while len(self._known) > CACHED_KEYS:
                self._known.popitem(last=False)
        return known

    def _record_use(self, key_id: str, now: float) -> None:
        """Note the use; write the noted ones when a key is first used here or the interval is over."""
        with self._lock:
            self._uses[key_id] = _now()
            if key_id in self._recorded and now < self._next_record:
                return
            uses, self._uses = self._uses, {}
            self._recorded.update(uses)
            self._next_record = now + USE_RECORD_INTERVAL_SECONDS
        self._write_uses(uses)

    def flush_uses(self) -> None:
        """Write every use noted since the last write (on shutdown)."""
        with self._lock:
            uses, self._uses = self._uses, {}
        self._write_uses(uses)

    def _write_uses(self, uses: dict[str, str]) -> None:
        """Best effort: a failure here must not fail the request."""
        if not uses:
            return
        try:
            with self.database.transaction() as tx:
                for key_id, used_at in sorted(uses.items()):
                    tx.execute(
                        "UPDATE api_keys SET last_used_at = ? WHERE key_id = ? AND"
                        " (last_used_at IS NULL OR last_used_at < ?)",
                        (used_at, key_id, used_at),
                    )
        except Exception as error:
            log.warning("could not record the use of API keys %s: %s", sorted(uses), type(error).__name__)


@dataclass(frozen=True)
class _Known:
    """A live key as last read, answered from memory until `until` (time.monotonic())."""

    principal: Principal
    expires_at: str | None
    until: float

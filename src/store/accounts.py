"""Projects and their API keys: who may call the service, and which project each call acts in."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
import uuid
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
"""`last_used_at` is written at most this often per key and process, so most requests write nothing."""

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
        self._use_recorded_until: dict[str, float] = {}
        self._use_lock = threading.Lock()

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

    def authenticate(self, secret: str) -> Principal | None:
        """The principal of a live key, or None for an unknown, revoked or expired one."""
        if not secret.startswith(KEY_PREFIX):
            return None
        with self.database.transaction(commit=False) as tx:
            row = tx.execute(
                "SELECT key_id, project_id, name, scope, expires_at FROM api_keys"
                " WHERE key_hash = ? AND revoked_at IS NULL",
                (hash_secret(secret),),
            ).fetchone()
        if row is None or _expired(row["expires_at"]):
            return None
        self._record_use(row["key_id"])
        return Principal(
            project_id=row["project_id"], key_id=row["key_id"], key_name=row["name"], scope=row["scope"]
        )

    def _record_use(self, key_id: str) -> None:
        """Best effort, and at most once a minute per key: a failure here must not fail the request."""
        now = time.monotonic()
        with self._use_lock:
            if now < self._use_recorded_until.get(key_id, 0.0):
                return
            self._use_recorded_until[key_id] = now + USE_RECORD_INTERVAL_SECONDS
        try:
            with self.database.transaction() as tx:
                tx.execute("UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", (_now(), key_id))
        except Exception as error:
            log.warning("could not record the use of API key %s: %s", key_id, type(error).__name__)

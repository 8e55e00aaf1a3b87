"""Projects and their API keys: who may call the service, and which project each call acts in."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.database import Database
from domain.errors import NotFound
from domain.workflow import Actor

ACCOUNTS_DDL = (
    "CREATE TABLE IF NOT EXISTS projects ("
    " project_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS api_keys ("
    " key_id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects (project_id),"
    " name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,"
    " revoked_at TEXT)",
)

KEY_PREFIX = "wfs_"


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a live API key and the project it belongs to."""

    project_id: str
    key_id: str
    key_name: str

    @property
    def actor(self) -> Actor:
        return {"keyId": self.key_id, "keyName": self.key_name}


@dataclass(frozen=True)
class ApiKey:
    """An API key as listed: never its secret, which is shown once when it is created."""

    key_id: str
    project_id: str
    name: str
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True)
class NewKey:
    """A key just created: the only moment its secret exists outside the caller's hands."""

    project_id: str
    key_id: str
    name: str
    secret: str


def hash_secret(secret: str) -> str:
    """Keys are 256 random bits, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Accounts:
    """Creates projects and keys, and resolves a bearer token to its principal."""

    def __init__(self, database: Database) -> None:
        self.database = database

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

    def create_key(self, project_id: str, name: str) -> NewKey:
        with self.database.transaction() as tx:
            found = tx.execute("SELECT 1 FROM projects WHERE project_id = ?", (project_id,)).fetchone()
            if found is None:
                raise NotFound(f"no project has id {project_id!r}")
            key_id = uuid.uuid4().hex[:16]
            secret = KEY_PREFIX + secrets.token_urlsafe(32)
            tx.execute(
                "INSERT INTO api_keys (key_id, project_id, name, key_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (key_id, project_id, name, hash_secret(secret), _now()),
            )
        return NewKey(project_id=project_id, key_id=key_id, name=name, secret=secret)

    def list_keys(self) -> list[ApiKey]:
        with self.database.transaction(commit=False) as tx:
            rows = tx.execute(
                "SELECT key_id, project_id, name, created_at, revoked_at FROM api_keys"
                " ORDER BY created_at, key_id"
            ).fetchall()
        return [
            ApiKey(
                key_id=row["key_id"],
                project_id=row["project_id"],
                name=row["name"],
                created_at=row["created_at"],
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
        """The principal of a live key, or None for an unknown or revoked one."""
        if not secret.startswith(KEY_PREFIX):
            return None
        with self.database.transaction(commit=False) as tx:
            row = tx.execute(
                "SELECT key_id, project_id, name FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
                (hash_secret(secret),),
            ).fetchone()
        if row is None:
            return None
        return Principal(project_id=row["project_id"], key_id=row["key_id"], key_name=row["name"])

"""The store a deployment runs on, chosen by DATABASE_URL, and one SQL surface over it for both dialects."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

DEFAULT_DATABASE_URL = "sqlite:///workflow-service.db"

Dialect = Literal["sqlite", "postgres"]

SCHEMA_LOCK_KEY = 7310431
"""The PostgreSQL advisory lock that serialises table creation between processes."""


@dataclass(frozen=True)
class StoreConfig:
    """Where the events and read models live, parsed from a DATABASE_URL."""

    url: str
    dialect: Dialect
    env: dict[str, str]

    @classmethod
    def from_url(cls, url: str, pool_size: int = 10) -> StoreConfig:
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
            if not path:
                raise ValueError(f"a SQLite DATABASE_URL looks like sqlite:///PATH, not {url!r}")
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            env = {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(Path(path).expanduser()),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
            return cls(url, "sqlite", env)
        if parts.scheme in ("postgresql", "postgres"):
            env = {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
                "POSTGRES_HOST": parts.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(parts.port or 5432),
                "POSTGRES_USER": unquote(parts.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(parts.password or ""),
                "POSTGRES_POOL_SIZE": str(pool_size),
                "POSTGRES_MAX_OVERFLOW": str(pool_size),
                "POSTGRES_CONNECT_TIMEOUT": "10",
                "POSTGRES_LOCK_TIMEOUT": "30",
                "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
            }
            return cls(url, "postgres", env)
        raise ValueError(f"DATABASE_URL must start with sqlite:/// or postgresql://, not {url!r}")


class Tx:
    """A cursor in an open transaction that takes `?` placeholders on either dialect."""

    _translated: dict[str, str] = {}
    _lock = threading.Lock()

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self._dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Tx:
        if self._dialect == "postgres":
            translated = self._translated.get(sql)
            if translated is None:
                translated = sql.replace("?", "%s")
                with self._lock:
                    self._translated[sql] = translated
            sql = translated
        self._cursor.execute(sql, params)
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())


class Database:
    """SQL over the event store's own connection pool, so read models share its database."""

    def __init__(self, datastore: Any, dialect: Dialect) -> None:
        self.datastore = datastore
        self.dialect = dialect

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Tx]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield Tx(cursor, self.dialect)

    def run_ddl(self, statements: Sequence[str]) -> None:
        """Run CREATE statements in one transaction; call it inside `schema_lock()`."""
        with self.transaction() as tx:
            for statement in statements:
                tx.execute(statement)

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Serialise schema changes between processes (an advisory lock on PostgreSQL).

        SQLite needs none: its writers are serialised by the database file itself.
        """
        if self.dialect != "postgres":
            yield
            return
        with self.datastore.get_connection() as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))

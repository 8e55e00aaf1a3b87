"""The store a deployment runs on, chosen by DATABASE_URL, and one SQL surface over it for both dialects."""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from store.outage import CONNECTION_WAIT_SECONDS, SQLITE_BUSY_SECONDS

DEFAULT_DATABASE_URL = "sqlite:///workflow-service.db"

Dialect = Literal["sqlite", "postgres"]

SCHEMA_LOCK_KEY = 7310431
"""The PostgreSQL advisory lock that serialises table creation between processes."""
CHECKPOINT_ATTEMPTS = 3

log = logging.getLogger(__name__)


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
                "SQLITE_LOCK_TIMEOUT": str(SQLITE_BUSY_SECONDS),
                "APPLICATION_RECORDER_TOPIC": "store.recorders:SqliteRecorder",  # keys with events
            }
            return cls(url, "sqlite", env)
        if parts.scheme in ("postgresql", "postgres"):
            env = {
                "PERSISTENCE_MODULE": "store.outage:PostgresStore",
                "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
                "POSTGRES_HOST": parts.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(parts.port or 5432),
                "POSTGRES_USER": unquote(parts.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(parts.password or ""),
                "POSTGRES_POOL_SIZE": str(pool_size),
                "POSTGRES_MAX_OVERFLOW": str(pool_size),
                "POSTGRES_CONNECT_TIMEOUT": str(CONNECTION_WAIT_SECONDS),  # the pool's wait, despite the name
                "POSTGRES_PRE_PING": "y",  # a connection that died while pooled is replaced, not handed out
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
        self.committed_actions: list[Callable[[], None]] = []

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once this transaction has committed (never if it rolls back)."""
        self.committed_actions.append(action)

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
        if dialect == "sqlite":
            _zero_deleted_content(datastore)

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Tx]:
        with self.datastore.transaction(commit=commit) as cursor:
            tx = Tx(cursor, self.dialect)
            yield tx
        if commit:
            for action in tx.committed_actions:
                action()

    def clear_residue(self) -> None:
        """SQLite: copy the WAL into the database file and empty it, so deleted rows leave no copy.

        With secure_delete the database file's freed space is already zeroed; the WAL still holds
        the pages as they were before. A reader still on an old snapshot makes the checkpoint
        report busy, so it is tried again. PostgreSQL keeps dead tuples until VACUUM: out of reach.
        """
        if self.dialect != "sqlite":
            return
        for _ in range(CHECKPOINT_ATTEMPTS):
            try:
                if not self._checkpoint():
                    return
            except Exception:  # the erasure itself is committed; a failed clean-up must not undo its answer
                log.exception("emptying the WAL failed")
            time.sleep(0.05)
        log.warning("the WAL could not be emptied after an erasure; SQLite empties it at a later checkpoint")

    def _checkpoint(self) -> bool:
        """Whether a reader kept the WAL from being emptied."""
        with self.datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return bool(cursor.fetchone()[0])

    def run_ddl(self, statements: Sequence[str]) -> None:
        """Run CREATE statements in one transaction; call it inside `schema_lock()`."""
        with self.transaction() as tx:
            for statement in statements:
                tx.execute(statement)

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Serialise schema changes between processes: an advisory lock on PostgreSQL, a lock file
        beside the database on SQLite (its own write lock gives up after a few seconds)."""
        if self.dialect != "postgres":
            with _file_lock(Path(f"{self.datastore.pool.db_name}.lock")):
                yield
            return
        with self.datastore.get_connection() as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))


def _zero_deleted_content(datastore: Any) -> None:
    """Every connection of the embedded store overwrites what it deletes with zeros (secure_delete).

    The library opens its SQLite connections itself, so each new one is set up as it is made.
    """
    pool = datastore.pool
    create = pool._create_connection

    def create_zeroing() -> Any:
        connection = create()
        connection.cursor().execute("PRAGMA secure_delete=ON")
        return connection

    pool._create_connection = create_zeroing


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock held while the block runs, released when it ends or the process dies."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

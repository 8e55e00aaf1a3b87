"""The stores tests run on: PostgreSQL databases cloned from a template, and a store's raw bytes.

PostgreSQL test databases are clones of a template that already holds every table: the template is
built once per session (by a real `Services`), so a test pays for `CREATE DATABASE … TEMPLATE`, not
for the DDL; a used clone is reset to the template's rows and handed to the next test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from composition.services import Services
from composition.settings import Settings

POSTGRES_URL_VARIABLE = "WFS_TEST_POSTGRES_URL"
NO_POSTGRES = (
    f"not run: set {POSTGRES_URL_VARIABLE} (e.g. postgresql://root@127.0.0.1:5432/postgres)"
    " or use `make test`, which sets it when PostgreSQL answers at 127.0.0.1:5432"
)
"""Completes "PostgreSQL cases …" when the run has no PostgreSQL."""

TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
SCHEMA_SHAPE = """
SELECT md5(coalesce((SELECT string_agg(format('%s.%s %s', table_name, column_name, data_type), ','
                                       ORDER BY table_name, ordinal_position)
                     FROM information_schema.columns WHERE table_schema = 'public'), '')
        || coalesce((SELECT string_agg(indexdef, ';' ORDER BY indexname)
                     FROM pg_indexes WHERE schemaname = 'public'), ''))
"""


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


class SchemaChanged(Exception):
    """A test changed a clone's tables, so it cannot be reset to the template's rows."""


@dataclass
class Template:
    """The session's template database: its name, its schema's shape and the rows it starts with."""

    name: str
    shape: str
    rows: dict[str, list[tuple[Any, ...]]]


class PostgresDatabases:
    """One session's PostgreSQL test databases: clones of a template, recycled between tests.

    `DROP DATABASE` forces a checkpoint (about half a second, more on a busy machine), so a used
    clone is reset to the template's rows and handed to the next test instead; one whose schema a
    test changed is dropped (on a background thread) and replaced by a new clone.
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.session_tag = uuid.uuid4().hex[:8]
        self._template: Template | None = None
        self._idle_clones: list[str] = []
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-database")

    def url(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def create_empty(self) -> str:
        """A database with no tables: what a new deployment starts from."""
        return self._create(f"wfs_test_{uuid.uuid4().hex[:12]}")

    def take_clone(self) -> str:
        """A database with every table and only the template's rows in them."""
        template = self._current_template()
        if self._idle_clones:
            return self._idle_clones.pop()
        return self._create(f"wfs_test_{uuid.uuid4().hex[:12]}", template=template.name)

    def give_back_clone(self, name: str) -> None:
        """Reset a used clone to the template's rows for the next test, or drop it if that fails."""
        try:
            self._reset(name, self._current_template())
        except (SchemaChanged, psycopg.Error):
            self.drop_later(name)
        else:
            self._idle_clones.append(name)

    def drop_later(self, name: str) -> None:
        self._dropper.submit(self._drop, name)

    def close(self) -> None:
        for name in self._idle_clones:
            self.drop_later(name)
        if self._template is not None:
            self.drop_later(self._template.name)
        self._dropper.shutdown(wait=True)

    def _current_template(self) -> Template:
        if self._template is None:
            self._template = self._build_template()
        return self._template

    def _build_template(self) -> Template:
        name = self._create(f"wfs_template_{self.session_tag}")
        Services(Settings(database_url=self.url(name))).close()
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            shape = _shape(conn)
            tables = [row[0] for row in conn.execute(TABLES)]
            rows = {
                table: conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall()
                for table in tables
            }
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            # A template can be cloned only while nobody is connected to it.
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        return Template(name, shape, {t: r for t, r in rows.items() if r})

    def _reset(self, name: str, template: Template) -> None:
        with psycopg.connect(self.url(name), autocommit=True) as conn, conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '2s'")
            if _shape(conn) != template.shape:
                raise SchemaChanged(name)
            for (table,) in conn.execute(TABLES).fetchall():
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
            for table, rows in template.rows.items():
                insert = sql.SQL("INSERT INTO {} VALUES ({})").format(
                    sql.Identifier(table), sql.SQL(", ").join([sql.Placeholder()] * len(rows[0]))
                )
                with conn.cursor() as cursor:
                    cursor.executemany(insert, rows)
            for (sequence,) in conn.execute(
                "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences"
            ).fetchall():
                conn.execute("SELECT setval(%s, 1, false)", (sequence,))

    def _create(self, name: str, template: str | None = None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{clause}')
            # A commit need not wait for its WAL to reach the disk: nothing here outlives a crash.
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        return name

    def _drop(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


MEMORY_DIRECTORY = Path("/dev/shm")
"""Where test SQLite stores live when the machine has it: a commit's sync to a disk costs milliseconds."""


def sqlite_directory(fallback: Path) -> Path:
    """A new directory for one test's SQLite store: in memory (tmpfs) when possible, else `fallback`."""
    if MEMORY_DIRECTORY.is_dir() and os.access(MEMORY_DIRECTORY, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="wfs-test-", dir=MEMORY_DIRECTORY))
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


class SqliteTemplate:
    """A SQLite store with every table, made once per session and copied for each test.

    Creating the tables commits a few dozen times, each a sync to disk; copying a file is one write.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.db"
        self._built = False

    def copy_to(self, path: Path) -> None:
        if not self._built:
            Services(Settings(database_url=f"sqlite:///{self.path}")).close()
            self._built = True
        for suffix in ("", "-wal"):  # closing the last connection empties the WAL into the file
            if Path(f"{self.path}{suffix}").exists():
                shutil.copyfile(f"{self.path}{suffix}", f"{path}{suffix}")


def _shape(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(SCHEMA_SHAPE).fetchone()
    assert row is not None
    return str(row[0])


def all_table_bytes(services: Services) -> bytes:
    """Every value of every table of the store, as bytes (text UTF-8 encoded), concatenated."""
    listing = (
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        if services.database.dialect == "sqlite"
        else "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
    )
    chunks: list[bytes] = []
    with services.database.transaction(commit=False) as tx:
        for table in [row["name"] for row in tx.execute(listing).fetchall()]:
            for row in tx.execute(f'SELECT * FROM "{table}"').fetchall():  # noqa: S608 - names from the catalog
                for value in row.values() if isinstance(row, dict) else tuple(row):
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value))
                    else:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


def sqlite_file_bytes(database_url: str) -> bytes:
    """The database file, its WAL and its shared-memory index, as they are on disk now."""
    path = database_url.removeprefix("sqlite:///")
    files = [Path(path), Path(f"{path}-wal"), Path(f"{path}-shm")]
    return b"\n".join(file.read_bytes() for file in files if file.exists())

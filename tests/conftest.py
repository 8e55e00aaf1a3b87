"""Fixtures: each behaviour test runs on the embedded SQLite store and on PostgreSQL.

PostgreSQL test databases are clones of a template that already holds every table: the template is
built once per session (by a real `Services`), so a test pays for `CREATE DATABASE … TEMPLATE`, not
for the DDL. Without PostgreSQL, the PostgreSQL cases are deselected and the run says so once.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql

from api.app import create_app
from composition.services import Services
from composition.settings import LOOPBACK_HOSTS, Settings

POSTGRES_URL_VARIABLE = "WFS_TEST_POSTGRES_URL"
TEST_MASTER_KEY = "0f" * 32
"""The KEK every test backend and test server uses (PostgreSQL refuses to start without one)."""
os.environ.setdefault("WFS_MASTER_KEY", TEST_MASTER_KEY)

SOURCE_ROOT = Path(__file__).resolve().parents[1] / "src"
NO_POSTGRES = (
    f"PostgreSQL cases not run: set {POSTGRES_URL_VARIABLE} (e.g. postgresql://root@127.0.0.1:5432/postgres)"
    " or use `make test`, which sets it when PostgreSQL answers at 127.0.0.1:5432"
)


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


def schema_fingerprint() -> str:
    """Changes whenever the code that defines the tables may have changed (any source file)."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE_ROOT.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
SCHEMA_SHAPE = """
SELECT md5(coalesce((SELECT string_agg(format('%s.%s %s', table_name, column_name, data_type), ','
                                       ORDER BY table_name, ordinal_position)
                     FROM information_schema.columns WHERE table_schema = 'public'), '')
        || coalesce((SELECT string_agg(indexdef, ';' ORDER BY indexname)
                     FROM pg_indexes WHERE schemaname = 'public'), ''))
"""


class SchemaChanged(Exception):
    """A test changed a clone's tables, so it cannot be reset to the template's rows."""


@dataclass
class Template:
    """The session's template database: its name, its schema's shape and the rows it starts with."""

    name: str
    source_fingerprint: str
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
        self._templates_built = 0
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
        fingerprint = schema_fingerprint()
        if self._template is None or fingerprint != self._template.source_fingerprint:
            for name in [*self._idle_clones, *([self._template.name] if self._template else [])]:
                self.drop_later(name)
            self._idle_clones.clear()
            self._template = self._build_template(fingerprint)
        return self._template

    def _build_template(self, source_fingerprint: str) -> Template:
        self._templates_built += 1
        name = self._create(f"wfs_template_{self.session_tag}_{self._templates_built}")
        Services(Settings(database_url=self.url(name))).close()
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            shape = conn.execute(SCHEMA_SHAPE).fetchone()[0]
            tables = [row[0] for row in conn.execute(TABLES)]
            rows = {
                table: conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall()
                for table in tables
            }
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            # A template can be cloned only while nobody is connected to it.
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        return Template(name, source_fingerprint, shape, {t: r for t, r in rows.items() if r})

    def _reset(self, name: str, template: Template) -> None:
        with psycopg.connect(self.url(name), autocommit=True) as conn, conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '2s'")
            if conn.execute(SCHEMA_SHAPE).fetchone()[0] != template.shape:
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
        return name

    def _drop(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(NO_POSTGRES)
    databases = PostgresDatabases(admin)
    yield databases
    databases.close()


@pytest.fixture
def make_postgres_url(postgres_databases: PostgresDatabases) -> Iterator[Any]:
    """Makes empty PostgreSQL databases for a test and drops them afterwards."""
    created: list[str] = []

    def make() -> str:
        created.append(postgres_databases.create_empty())
        return postgres_databases.url(created[-1])

    yield make
    for name in created:
        postgres_databases.drop_later(name)


@pytest.fixture
def postgres_from_template() -> bool:
    """Whether `database_url` gives a PostgreSQL database that already has its tables.

    True here; tests/integration overrides it: a server process starts from an empty database.
    """
    return True


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_from_template: bool
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    if not postgres_from_template:
        name = databases.create_empty()
        yield databases.url(name)
        databases.drop_later(name)
        return
    name = databases.take_clone()
    yield databases.url(name)
    databases.give_back_clone(name)


@pytest.fixture
def backend(database_url: str, tmp_path: Path, postgres_from_template: bool) -> Iterator[Services]:
    cloned = database_url.startswith("postgresql") and postgres_from_template
    settings = Settings(
        database_url=database_url,
        files_dir=tmp_path / "files",
        allowed_hosts=(*LOOPBACK_HOSTS, "testserver.local"),  # the test client's Host
    )
    backend = Services(settings, create_tables=not cloned)
    yield backend
    backend.close()


def pytest_report_header(config: pytest.Config) -> str:
    admin = postgres_admin_url()
    if admin is None:
        return NO_POSTGRES
    return f"PostgreSQL: {admin} (test databases cloned from a per-session template)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without PostgreSQL, deselect its cases rather than skip each of them on its own line."""
    if postgres_admin_url() is not None:
        return
    postgres = [item for item in items if item.get_closest_marker("postgres") is not None]
    if postgres:
        config.hook.pytest_deselected(items=postgres)
        items[:] = [item for item in items if item.get_closest_marker("postgres") is None]
        config.stash[_DESELECTED] = True


_DESELECTED = pytest.StashKey[bool]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if config.stash.get(_DESELECTED, False):
        terminalreporter.write_line(NO_POSTGRES, yellow=True)


class Api:
    """An HTTP client of the real app, calling as one project's API key."""

    def __init__(self, client: TestClient[Any], key: str, project_id: str) -> None:
        self.client = client
        self.key = key
        self.project_id = project_id
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params=params, headers=self.headers)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(f"/api/v1{path}", json=body, headers={**self.headers, **(headers or {})})

    def create(self, name: str = "Release hardening", **fields: Any) -> dict[str, Any]:
        body = {"name": name, "pipelineSteps": [{"type": "designer", "cliId": "claude"}], **fields}
        response = self.post("/workflows/create", body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


@pytest.fixture
def client(backend: Services) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(backend=backend)) as client:
        yield client


@pytest.fixture
def api(backend: Services, client: TestClient[Any]) -> Api:
    new = backend.accounts.create_project("tests")
    return Api(client, new.secret, new.project_id)


@pytest.fixture
def other_api(backend: Services, client: TestClient[Any]) -> Api:
    """A second project, to prove that projects never see each other's data."""
    new = backend.accounts.create_project("others")
    return Api(client, new.secret, new.project_id)

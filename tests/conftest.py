"""Fixtures: each behaviour test runs on the embedded SQLite store and on PostgreSQL.

Both stores start as copies of a per-session template that already holds every table
(tests/support/stores.py). A case marked `sqlite_only` runs on SQLite alone. Without PostgreSQL,
the PostgreSQL cases are deselected and the run says so once, at the end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from api.app import build_app, serve_services
from composition.services import Services
from composition.settings import LOOPBACK_HOSTS, Settings
from tests.support.client import Api
from tests.support.stores import (
    NO_POSTGRES,
    PostgresDatabases,
    SqliteTemplate,
    postgres_admin_url,
    sqlite_directory,
)

TEST_MASTER_KEY = "0f" * 32
"""The KEK every test's services and test server use (PostgreSQL refuses to start without one)."""
os.environ.setdefault("WFS_MASTER_KEY", TEST_MASTER_KEY)
TEST_POOL_SIZE = 2
"""PostgreSQL connections in-process test services keep open (at most twice that under load): the
default ten cost PostgreSQL ten services processes per test, a fifth of the suite's CPU. Servers that
tests start keep the default."""


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(f"PostgreSQL cases {NO_POSTGRES}")
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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteTemplate]:
    directory = sqlite_directory(fallback=tmp_path_factory.mktemp("sqlite-template"))
    yield SqliteTemplate(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def tables_from_template() -> bool:
    """Whether `database_url` gives a store that already has its tables (a copy of a template).

    True here; tests/integration overrides it: a server process starts from an empty store.
    """
    return True


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, tables_from_template: bool) -> Iterator[str]:
    if request.param == "sqlite":
        directory = sqlite_directory(fallback=tmp_path)
        if tables_from_template:
            request.getfixturevalue("sqlite_template").copy_to(directory / "store.db")
        yield f"sqlite:///{directory / 'store.db'}"
        if directory != tmp_path:
            shutil.rmtree(directory, ignore_errors=True)
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    if not tables_from_template:
        name = databases.create_empty()
        yield databases.url(name)
        databases.drop_later(name)
        return
    name = databases.take_clone()
    yield databases.url(name)
    databases.give_back_clone(name)


@pytest.fixture
def services(database_url: str, tmp_path: Path, tables_from_template: bool) -> Iterator[Services]:
    settings = Settings(
        database_url=database_url,
        files_dir=tmp_path / "files",
        allowed_hosts=(*LOOPBACK_HOSTS, "testserver.local"),  # the test client's Host
        pool_size=TEST_POOL_SIZE,
    )
    services = Services(settings, create_tables=not tables_from_template)
    yield services
    services.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only: a case the store plays no part in (input validation and other 4xx answered before it"
        " is reached, request ids, the OpenAPI document); it runs on SQLite alone, since PostgreSQL would"
        " run the same code. Applies to a test or to one pytest.param.",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    """Which PostgreSQL the run uses; without one, the summary at the end says so instead."""
    admin = postgres_admin_url()
    return None if admin is None else f"PostgreSQL: {admin} (test databases cloned from a template)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the PostgreSQL variant of `sqlite_only` cases; without PostgreSQL, deselect its cases
    rather than skip each of them on its own line."""
    one_store = {item for item in items if is_postgres(item) and item.get_closest_marker("sqlite_only")}
    if one_store:
        config.hook.pytest_deselected(items=list(one_store))
        items[:] = [item for item in items if item not in one_store]
    if postgres_admin_url() is not None:
        return
    postgres = [item for item in items if is_postgres(item)]
    if postgres:
        config.hook.pytest_deselected(items=postgres)
        items[:] = [item for item in items if not is_postgres(item)]
        config.stash[_POSTGRES_NOT_RUN] = len(postgres)


def is_postgres(item: pytest.Item) -> bool:
    return item.get_closest_marker("postgres") is not None


_POSTGRES_NOT_RUN = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker tells the controller how many PostgreSQL cases it left out."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["postgres_not_run"] = session.config.stash.get(_POSTGRES_NOT_RUN, 0)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Every worker collects every case, so any one of them gives the count."""
    left_out = getattr(node, "workeroutput", {}).get("postgres_not_run", 0)
    node.config.stash[_POSTGRES_NOT_RUN] = max(left_out, node.config.stash.get(_POSTGRES_NOT_RUN, 0))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    left_out = config.stash.get(_POSTGRES_NOT_RUN, 0)
    if left_out:
        cases = "case" if left_out == 1 else "cases"
        terminalreporter.write_line(f"{left_out} PostgreSQL {cases} {NO_POSTGRES}", yellow=True)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient[Any]]:
    with TestClient(app_serving(services)) as client:
        yield client


_APPS: dict[tuple[tuple[str, str], ...], Litestar] = {}


def app_serving(services: Services) -> Litestar:
    """This worker's app, pointed at the test's services: building a Litestar app takes about 50 ms,
    a fifth of a short test, so each worker builds one per `WFS_*` environment (which the app reads)."""
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("WFS_")))
    app = _APPS.get(environment)
    if app is None:
        app = _APPS[environment] = build_app()
    serve_services(app, services, owned=False)
    return app


@pytest.fixture
def api(services: Services, client: TestClient[Any]) -> Api:
    new = services.accounts.create_project("tests")
    return Api(client, new.secret, new.project_id)


@pytest.fixture
def other_api(services: Services, client: TestClient[Any]) -> Api:
    """A second project, to prove that projects never see each other's data."""
    new = services.accounts.create_project("others")
    return Api(client, new.secret, new.project_id)

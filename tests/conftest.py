"""Fixtures: each behaviour test runs on the embedded SQLite store and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.backend import Backend
from api.settings import Settings

POSTGRES_URL_VARIABLE = "WFS_TEST_POSTGRES_URL"


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


@pytest.fixture
def make_postgres_url() -> Iterator[Any]:
    """Makes fresh PostgreSQL databases for a test and drops them afterwards."""
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (e.g. postgresql://root@127.0.0.1/test)")
    created: list[str] = []

    def make() -> str:
        name = f"wfs_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return admin.rsplit("/", 1)[0] + "/" + name

    yield make
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    make: Any = request.getfixturevalue("make_postgres_url")
    url: str = make()
    return url


@pytest.fixture
def backend(database_url: str, tmp_path: Path) -> Iterator[Backend]:
    backend = Backend(Settings(database_url=database_url, files_dir=tmp_path / "files"))
    yield backend
    backend.close()


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
def client(backend: Backend) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(backend=backend)) as client:
        yield client


@pytest.fixture
def api(backend: Backend, client: TestClient[Any]) -> Api:
    new = backend.accounts.create_project("tests")
    return Api(client, new.secret, new.project_id)


@pytest.fixture
def other_api(backend: Backend, client: TestClient[Any]) -> Api:
    """A second project, to prove that projects never see each other's data."""
    new = backend.accounts.create_project("others")
    return Api(client, new.secret, new.project_id)

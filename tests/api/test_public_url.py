"""Upload URLs are built from WFS_PUBLIC_URL, or from a Host the server answers to, never from any Host."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from composition.settings import LOOPBACK_HOSTS, Settings
from tests.support.data import PNG
from tests.support.servers import start_server, stop_server

Connect = Callable[..., TestClient[Any]]
"""Builds the real app over the store under test with the given settings; returns a keyed client."""


@pytest.fixture
def connect(database_url: str, tmp_path: Path) -> Iterator[Connect]:
    built: list[Services] = []
    clients: list[TestClient[Any]] = []

    def make(**settings: Any) -> TestClient[Any]:
        services = Services(Settings(database_url=database_url, files_dir=tmp_path / "files", **settings))
        built.append(services)
        client = TestClient(create_app(services=services), base_url="http://127.0.0.1:8000")
        clients.append(client.__enter__())
        client.headers["Authorization"] = f"Bearer {services.accounts.create_project('p').secret}"
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
    for services in built:
        services.close()


def ask(client: TestClient[Any], host: str | None = None) -> httpx.Response:
    headers = {"Host": host} if host else {}
    return client.post("/api/v1/files/upload-url", json={}, headers=headers)


def upload(client: TestClient[Any], url: str, host: str | None = None) -> httpx.Response:
    """Send an image to an upload URL's path on this server (the URL may name a proxy in front of it)."""
    headers = {"Content-Type": "image/png", **({"Host": host} if host else {})}
    return client.post(urlsplit(url).path, content=PNG, headers=headers)


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "localhost.evil.example", "localhost@evil.example", "[::2]"]
)
@pytest.mark.sqlite_only
def test_a_host_the_server_does_not_answer_to_is_400(connect: Connect, host: str) -> None:
    client = connect()

    response = ask(client, host)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "Host"


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:9999", "[::1]:8000", "LOCALHOST"])
def test_an_allowed_host_gets_a_url_on_itself_that_takes_the_upload(connect: Connect, host: str) -> None:
    client = connect()

    response = ask(client, host)

    assert response.status_code == 200, response.text
    url = response.json()["uploadUrl"]
    assert url.startswith(f"http://{host}/uploads/")
    assert upload(client, url, host).status_code == 200


def test_hosts_listed_in_allowed_hosts_replace_the_default(connect: Connect) -> None:
    client = connect(allowed_hosts=("api.example.com",))

    assert ask(client, "api.example.com").json()["uploadUrl"].startswith("http://api.example.com/uploads/")
    assert ask(client, "localhost:8000").status_code == 400


def test_star_allows_any_host(connect: Connect) -> None:
    client = connect(allowed_hosts=("*",))

    assert ask(client, "anything.example").json()["uploadUrl"].startswith("http://anything.example/uploads/")


@pytest.mark.parametrize("host", ["evil.example", "localhost:8000"])
def test_public_url_is_the_base_whatever_the_host(connect: Connect, host: str) -> None:
    client = connect(public_url="https://files.example.com/wfs")

    response = ask(client, host)

    assert response.status_code == 200, response.text
    url = response.json()["uploadUrl"]
    assert url.startswith("https://files.example.com/wfs/uploads/")
    stored = client.post(
        url.removeprefix("https://files.example.com/wfs"), content=PNG, headers={"Content-Type": "image/png"}
    )
    assert stored.status_code == 200, stored.text


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WFS_PUBLIC_URL", "WFS_ALLOWED_HOSTS", "WFS_BIND_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env().allowed_hosts == LOOPBACK_HOSTS
    assert Settings.from_env().public_url is None

    monkeypatch.setenv("WFS_BIND_HOST", "::")
    assert Settings.from_env().allowed_hosts == (*LOOPBACK_HOSTS, "[::]")
    monkeypatch.setenv("WFS_ALLOWED_HOSTS", " API.example.com, ,10.0.0.5 ")
    assert Settings.from_env().allowed_hosts == ("api.example.com", "10.0.0.5")
    monkeypatch.setenv("WFS_PUBLIC_URL", "https://api.example.com/")
    assert Settings.from_env().public_url == "https://api.example.com"
    monkeypatch.setenv("WFS_PUBLIC_URL", "api.example.com")
    with pytest.raises(ValueError, match="WFS_PUBLIC_URL"):
        Settings.from_env()


def test_serve_allows_the_address_it_was_told_to_bind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WFS_PUBLIC_URL", "WFS_ALLOWED_HOSTS", "WFS_BIND_HOST"):
        monkeypatch.delenv(name, raising=False)
    server = start_server(f"sqlite:///{tmp_path / 'store.db'}", host="127.0.0.2", cwd=tmp_path)
    try:
        assert server.key, "serve printed no API key"
        with server.client() as client:
            own = client.post("/api/v1/files/upload-url", json={})
            assert own.status_code == 200, own.text
            assert own.json()["uploadUrl"].startswith(f"{server.base_url}/uploads/")
            evil = client.post("/api/v1/files/upload-url", json={}, headers={"Host": "evil.example"})
            assert evil.status_code == 400
    finally:
        stop_server(server)

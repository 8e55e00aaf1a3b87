"""`workflow-service keys`: scopes, expiry and the key list, through the real command on both stores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.cli import main
from composition.settings import Settings

HEADER = ["ID", "SCOPE", "PROJECT", "NAME", "CREATED", "LAST USED", "EXPIRES", "REVOKED"]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def rows(listing: str) -> list[dict[str, str]]:
    """`keys list` as dicts, checking that the first line is the header."""
    lines = [line.split("\t") for line in listing.splitlines()]
    assert lines[0] == HEADER
    assert all(len(line) == len(HEADER) for line in lines)
    return [dict(zip(HEADER, line, strict=True)) for line in lines[1:]]


def new_project(cli: Any) -> str:
    code, out = cli("projects", "create", "team")
    assert code == 0
    return str(out.split()[1])


def test_a_runner_key_that_expires_in_a_day(cli: Any, database_url: str, tmp_path: Path) -> None:
    project_id = new_project(cli)
    code, out = cli(
        "keys", "create", "--project", project_id, "--name", "agent", "--scope", "runner", "--expires-in", "1"
    )
    assert code == 0, out
    key_id, secret = out.split()[2].rstrip(":"), out.split()[3]
    assert "scope runner, expires " in out

    (project_key, runner_key) = rows(cli("keys", "list")[1])
    assert (project_key["SCOPE"], project_key["NAME"], project_key["EXPIRES"]) == ("write", "team key", "-")
    assert runner_key["ID"] == key_id
    assert (runner_key["SCOPE"], runner_key["PROJECT"], runner_key["NAME"]) == ("runner", project_id, "agent")
    assert (runner_key["LAST USED"], runner_key["REVOKED"]) == ("-", "-")
    expires = datetime.strptime(runner_key["EXPIRES"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(days=1)
    assert datetime.strptime(runner_key["CREATED"], "%Y-%m-%dT%H:%M:%SZ").year == datetime.now(UTC).year

    with TestClient(create_app(Settings(database_url=database_url, files_dir=tmp_path / "files"))) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        assert client.get("/api/v1/workflows/list", headers=headers).status_code == 200
        body = {"name": "no", "pipelineSteps": [{"type": "designer"}]}
        assert client.post("/api/v1/workflows/create", json=body, headers=headers).status_code == 403

    (_, used) = rows(cli("keys", "list")[1])
    assert used["LAST USED"] != "-"
    assert cli("keys", "revoke", key_id)[0] == 0
    assert rows(cli("keys", "list")[1])[1]["REVOKED"] != "-"


def test_a_key_expiring_at_a_time(cli: Any) -> None:
    project_id = new_project(cli)
    code, out = cli(
        "keys", "create", "--project", project_id, "--scope", "read", "--expires-at", "2099-01-31T18:00:00Z"
    )
    assert code == 0, out
    listed = rows(cli("keys", "list")[1])[-1]
    assert (listed["SCOPE"], listed["EXPIRES"]) == ("read", "2099-01-31T18:00:00Z")
    assert cli("keys", "create", "--project", project_id, "--expires-at", "2099-02-01T00:00:00+02:00")[0] == 0
    assert rows(cli("keys", "list")[1])[-1]["EXPIRES"] == "2099-01-31T22:00:00Z"


@pytest.mark.parametrize(
    "arguments",
    [
        ["--scope", "admin"],
        ["--expires-in", "0"],
        ["--expires-in", "-1"],
        ["--expires-in", "nan"],
        ["--expires-in", "soon"],
        ["--expires-at", "2001-01-01T00:00:00Z"],
        ["--expires-at", "tomorrow"],
        ["--expires-in", "1", "--expires-at", "2099-01-01T00:00:00Z"],
    ],
)
def test_bad_scopes_and_expiries_are_refused(cli: Any, arguments: list[str]) -> None:
    project_id = new_project(cli)
    code, _ = cli("keys", "create", "--project", project_id, *arguments)
    assert code == 2
    assert len(rows(cli("keys", "list")[1])) == 1  # the project's own key only


def test_keys_list_through_the_installed_command(cli: Any, database_url: str) -> None:
    project_id = new_project(cli)
    assert cli("keys", "create", "--project", project_id, "--scope", "runner")[0] == 0
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "keys", "list"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [row["SCOPE"] for row in rows(result.stdout)] == ["write", "runner"]


def test_keys_of_a_store_made_before_scopes_are_write_keys_that_never_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    shutil.copy(FIXTURES / "store-v1.db", tmp_path / "store-v1.db")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'store-v1.db'}")
    monkeypatch.setenv("WFS_FILES_DIR", str(tmp_path / "files"))
    assert main(["keys", "list"]) == 0
    listed = rows(capsys.readouterr().out)
    assert listed
    assert {(row["SCOPE"], row["EXPIRES"]) for row in listed} == {("write", "-")}

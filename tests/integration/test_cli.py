"""The `workflow-service` command: projects, keys, the first-start key, and rebuild."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.cli import cli_in_process
from tests.support.servers import run_cli, start_server, stop_server


def test_projects_create_quiet_prints_a_working_key(database_url: str) -> None:
    created = run_cli(database_url, "projects", "create", "team-a", "--quiet")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("wfs_")
    assert "\n" not in key
    server = start_server(database_url)
    try:
        ok = httpx.get(f"{server.base_url}/api/v1/workflows/list", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
        assert server.key is None  # the store had a project, so no `default` one was made
    finally:
        stop_server(server)


def test_serve_prints_the_default_key_only_on_an_empty_store(database_url: str) -> None:
    first = start_server(database_url)
    stop_server(first)
    assert first.key is not None
    second = start_server(database_url)
    stop_server(second)
    assert second.key is None


def test_keys_create_list_and_revoke(cli: Any) -> None:
    project_id = cli("projects", "create", "team")[1].splitlines()[0].split()[1]
    code, created = cli("keys", "create", "--project", project_id, "--name", "ci")
    assert code == 0, created
    key_id = created.split()[2].rstrip(":")
    assert f"{key_id}\twrite\t{project_id}\tci" in cli("keys", "list")[1]
    assert cli("keys", "revoke", key_id)[0] == 0
    assert cli("keys", "list")[1].splitlines()[-1].split("\t")[-1] != "-"  # revoked at
    assert cli("keys", "revoke", "nope")[0] == 1
    assert cli("keys", "create", "--project", "nope")[0] == 1


def test_rebuild_rebuilds_every_read_model(database_url: str) -> None:
    server = start_server(database_url)
    try:
        headers = {"Authorization": f"Bearer {server.key}"}
        body = {"name": "kept", "pipelineSteps": [{"type": "designer"}]}
        created = httpx.post(f"{server.base_url}/api/v1/workflows/create", json=body, headers=headers)
        assert created.status_code == 201
        result = cli_in_process(database_url, "rebuild")  # beside the serving process
        assert result.returncode == 0, result.stderr
        assert "workflow_summary: rebuilt up to position" in result.stdout
        listed = httpx.get(f"{server.base_url}/api/v1/workflows/list", headers=headers).json()
        assert [item["id"] for item in listed["items"]] == [created.json()["id"]]
    finally:
        stop_server(server)

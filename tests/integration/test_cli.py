"""The `workflow-service` command: projects, keys, the first-start key, and rebuild."""

from __future__ import annotations

import httpx

from tests.integration.conftest import run_cli, start_server, stop_server


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


def test_keys_create_list_and_revoke(database_url: str) -> None:
    project_line = run_cli(database_url, "projects", "create", "team").stdout.splitlines()[0]
    project_id = project_line.split()[1]
    created = run_cli(database_url, "keys", "create", "--project", project_id, "--name", "ci")
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.split()[2].rstrip(":")
    listed = run_cli(database_url, "keys", "list").stdout
    assert f"{key_id}\twrite\t{project_id}\tci" in listed
    assert run_cli(database_url, "keys", "revoke", key_id).returncode == 0
    assert run_cli(database_url, "keys", "list").stdout.splitlines()[-1].split("\t")[-1] != "-"  # revoked at
    assert run_cli(database_url, "keys", "revoke", "nope").returncode == 1
    assert run_cli(database_url, "keys", "create", "--project", "nope").returncode == 1


def test_rebuild_rebuilds_every_read_model(database_url: str) -> None:
    server = start_server(database_url)
    try:
        headers = {"Authorization": f"Bearer {server.key}"}
        body = {"name": "kept", "pipelineSteps": [{"type": "designer"}]}
        created = httpx.post(f"{server.base_url}/api/v1/workflows/create", json=body, headers=headers)
        assert created.status_code == 201
        result = run_cli(database_url, "rebuild")
        assert result.returncode == 0, result.stderr
        assert "workflow_summary: rebuilt up to position" in result.stdout
        listed = httpx.get(f"{server.base_url}/api/v1/workflows/list", headers=headers).json()
        assert [item["id"] for item in listed["items"]] == [created.json()["id"]]
    finally:
        stop_server(server)

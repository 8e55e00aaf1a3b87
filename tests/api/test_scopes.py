"""Key scopes over HTTP, on both stores: a read key browses and changes nothing, a runner key reports runs
and nothing else, a write key does everything; expired and revoked keys are 401."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from composition.services import Services
from store.accounts import KeyScope
from tests.support.client import Api

RUNNER_WRITES = {"/api/v1/runs/report", "/api/v1/runs/cancel"}


def routes(client: TestClient[Any], method: str) -> list[str]:
    """Every /api/v1 route the app serves with this method, so a new route is covered by itself."""
    found = sorted(
        route.path
        for route in client.app.routes
        if isinstance(route, HTTPRoute) and route.path.startswith("/api/v1/") and method in route.methods
    )
    assert found, f"the app has no {method} routes under /api/v1"
    return found


def key(services: Services, client: TestClient[Any], api: Api, scope: KeyScope, **fields: Any) -> Api:
    """Another key of `api`'s project, with this scope."""
    new = services.accounts.create_key(api.project_id, f"{scope} key", scope, **fields)
    return Api(client, new.secret, api.project_id)


def assert_out_of_scope(response: Any, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 403
    assert problem["type"].endswith("/out-of-scope")
    assert repr(scope) in problem["detail"]


def started_run(api: Api, workflow_id: str) -> dict[str, Any]:
    response = api.post("/runs/start", {"workflowId": workflow_id, "prompt": "Fix the flaky test"})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def snapshot(api: Api, workflow_id: str) -> tuple[Any, ...]:
    """What a refused write must leave unchanged: the list, the workflow, its history and its runs."""
    return (
        api.get("/workflows/list").json(),
        api.get("/workflows/versions", id=workflow_id).json(),
        api.get("/workflows/runs", id=workflow_id).json(),
        api.get("/events").json(),
    )


def test_a_read_key_can_call_every_get_route(api: Api, services: Services, client: TestClient[Any]) -> None:
    workflow = api.create()
    run = started_run(api, workflow["id"])
    reader = key(services, client, api, "read")
    for path in routes(client, "GET"):
        query = {"id": run["id"] if path.startswith("/api/v1/runs/") else workflow["id"]}
        answered = client.get(path, params=query, headers=reader.headers)
        assert answered.status_code == 200, (path, answered.text)
        assert answered.status_code == client.get(path, params=query, headers=api.headers).status_code


def test_a_read_key_gets_403_on_every_post_route_and_nothing_changes(
    api: Api, services: Services, client: TestClient[Any]
) -> None:
    workflow = api.create()
    run = started_run(api, workflow["id"])
    reader = key(services, client, api, "read")
    before = snapshot(api, workflow["id"])
    body = {"workflowId": workflow["id"], "runId": run["id"], "name": "renamed", "status": "running"}
    for path in routes(client, "POST"):
        assert_out_of_scope(client.post(path, json=body, headers=reader.headers), "read")
    assert snapshot(api, workflow["id"]) == before


@pytest.mark.sqlite_only
def test_a_read_key_is_refused_before_its_body_is_looked_at(
    api: Api, services: Services, client: TestClient[Any]
) -> None:
    reader = key(services, client, api, "read")
    not_json = client.post(
        "/api/v1/workflows/create", content=b"{", headers={**reader.headers, "Content-Type": "text/plain"}
    )
    assert_out_of_scope(not_json, "read")


def test_a_runner_key_reports_and_cancels_runs_and_nothing_else(
    api: Api, services: Services, client: TestClient[Any]
) -> None:
    workflow = api.create()
    reported, cancelled = started_run(api, workflow["id"]), started_run(api, workflow["id"])
    runner = key(services, client, api, "runner")

    running = runner.post("/runs/report", {"runId": reported["id"], "status": "running"})
    assert running.status_code == 200, running.text
    assert running.json()["status"] == "running"
    stopped = runner.post("/runs/cancel", {"runId": cancelled["id"]})
    assert stopped.status_code == 200, stopped.text
    assert api.get("/runs/get", id=cancelled["id"]).json()["status"] == "cancelled"
    assert runner.get("/runs/get", id=reported["id"]).status_code == 200

    before = snapshot(api, workflow["id"])
    body = {"workflowId": workflow["id"], "runId": reported["id"], "name": "renamed", "prompt": "again"}
    for path in routes(client, "POST"):
        if path not in RUNNER_WRITES:
            assert_out_of_scope(client.post(path, json=body, headers=runner.headers), "runner")
    assert snapshot(api, workflow["id"]) == before


def test_a_write_key_may_call_every_route(api: Api, services: Services, client: TestClient[Any]) -> None:
    writer = key(services, client, api, "write")
    for path in routes(client, "POST"):
        answered = client.post(path, json={}, headers=writer.headers)
        assert answered.status_code in (200, 400), (path, answered.text)  # past the scope check
    workflow = writer.create("by the write key")
    renamed = writer.post("/workflows/rename", {"workflowId": workflow["id"], "name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    run = started_run(writer, workflow["id"])
    assert writer.post("/runs/report", {"runId": run["id"], "status": "running"}).status_code == 200
    assert writer.post("/runs/cancel", {"runId": run["id"]}).status_code == 200
    assert writer.post("/workflows/delete", {"workflowId": workflow["id"]}).status_code == 200


def test_a_project_key_is_a_write_key(api: Api, services: Services) -> None:
    scopes = {k.scope for k in services.accounts.list_keys() if k.project_id == api.project_id}
    assert scopes == {"write"}


def test_an_expired_key_is_401_like_a_revoked_one(
    api: Api, services: Services, client: TestClient[Any]
) -> None:
    now = datetime.now(UTC)
    live = key(services, client, api, "read", expires_at=now + timedelta(days=1))
    expired = key(services, client, api, "write", expires_at=now - timedelta(seconds=1))
    assert live.get("/workflows/list").status_code == 200
    for response in (expired.get("/workflows/list"), expired.post("/workflows/create", {"name": "x"})):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"] == "the API key is unknown, revoked or expired"


def test_a_revoked_key_of_any_scope_is_401(api: Api, services: Services, client: TestClient[Any]) -> None:
    for scope in ("read", "runner", "write"):
        caller = key(services, client, api, scope)  # type: ignore[arg-type]
        assert caller.get("/workflows/list").status_code == 200
        key_id = next(k.key_id for k in services.accounts.list_keys() if k.name == f"{scope} key")
        services.accounts.revoke_key(key_id)
        assert caller.get("/workflows/list").status_code == 401
        assert caller.post("/runs/report", {"runId": "r", "status": "running"}).status_code == 401


def test_an_idempotent_replay_is_refused_to_a_read_key(
    api: Api, services: Services, client: TestClient[Any]
) -> None:
    body = {"name": "once", "pipelineSteps": [{"type": "designer"}]}
    first = api.post("/workflows/create", body, {"Idempotency-Key": "create-once"})
    assert first.status_code == 201, first.text
    reader = key(services, client, api, "read")
    refused = reader.post("/workflows/create", body, {"Idempotency-Key": "create-once"})
    assert_out_of_scope(refused, "read")
    assert "idempotent-replayed" not in refused.headers
    assert first.json()["id"] not in refused.text
    replayed = api.post("/workflows/create", body, {"Idempotency-Key": "create-once"})
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.content == first.content


def test_a_runner_key_gets_replays_of_its_own_reports(
    api: Api, services: Services, client: TestClient[Any]
) -> None:
    run = started_run(api, api.create()["id"])
    runner = key(services, client, api, "runner")
    body = {"runId": run["id"], "status": "running"}
    first = runner.post("/runs/report", body, {"Idempotency-Key": "report-1"})
    again = runner.post("/runs/report", body, {"Idempotency-Key": "report-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"


def test_using_a_key_records_when_it_was_last_used(api: Api, services: Services) -> None:
    assert api.get("/workflows/list").status_code == 200
    mine = next(k for k in services.accounts.list_keys() if k.project_id == api.project_id)
    assert mine.last_used_at is not None
    assert datetime.fromisoformat(mine.last_used_at) > datetime.now(UTC) - timedelta(minutes=5)


def test_keys_made_before_scopes_existed_become_write_keys(services: Services) -> None:
    """A store whose api_keys table predates the scope and expiry columns gains them on start."""
    new = services.accounts.create_project("old")
    with services.database.transaction() as tx:
        for column in ("scope", "expires_at", "last_used_at"):
            tx.execute(f"ALTER TABLE api_keys DROP COLUMN {column}")
    services.create_tables()
    services.create_tables()  # and again: nothing left to add
    principal = services.accounts.authenticate(new.secret)
    assert principal is not None
    assert principal.scope == "write"
    (listed,) = services.accounts.list_keys()
    assert (listed.scope, listed.expires_at) == ("write", None)


@pytest.mark.parametrize("scope", ["read", "runner"])
def test_the_openapi_document_declares_403_on_writes_only(client: TestClient[Any], scope: str) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    for path, operations in paths.items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            assert ("403" in operation["responses"]) == (method == "post"), (path, method)
    forbidden = paths["/api/v1/workflows/create"]["post"]["responses"]["403"]
    assert (
        forbidden["content"]["application/problem+json"]["schema"]["$ref"] == "#/components/schemas/Problem"
    )
    assert f"`{scope}`" in forbidden["description"]

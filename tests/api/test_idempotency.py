"""Idempotency-Key: a retried POST answers the first response and stores nothing new, on both stores."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

import api.idempotency.middleware as middleware
from api.app import create_app
from composition.services import Services
from composition.settings import Settings
from store.idempotency import PENDING_SECONDS, Fingerprint, IdempotencyRecords
from tests.support.client import Api
from tests.support.data import STEPS

BODY = {"name": "Release hardening", "pipelineSteps": STEPS}
CREATE = "/workflows/create"


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def listed(api: Api) -> list[dict[str, Any]]:
    response = api.get("/workflows/list")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def backdate(services: Services, seconds: float) -> None:
    with services.database.transaction() as tx:
        tx.execute("UPDATE idempotency_keys SET created_at = created_at - ?", (seconds,))


def record_count(services: Services) -> int:
    with services.database.transaction(commit=False) as tx:
        row = tx.execute("SELECT COUNT(*) AS n FROM idempotency_keys").fetchone()
    return int(row["n"])


def test_a_retried_create_answers_the_first_response_and_stores_one_workflow(api: Api) -> None:
    first = api.post(CREATE, BODY, keyed("create-1"))
    again = api.post(CREATE, BODY, keyed("create-1"))

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers.get("etag") == first.headers.get("etag")
    assert again.headers.get("location") == first.headers.get("location")
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert [item["id"] for item in listed(api)] == [first.json()["id"]]
    history = api.get("/workflows/history", id=first.json()["id"]).json()
    assert len(history["items"]) == 1


def test_the_same_key_with_another_body_is_409_and_stores_nothing(api: Api) -> None:
    first = api.post(CREATE, BODY, keyed("create-2"))
    other = api.post(CREATE, {**BODY, "name": "Something else"}, keyed("create-2"))

    assert first.status_code == 201
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert len(listed(api)) == 1


def test_same_body_means_the_same_bytes(api: Api) -> None:
    """Equal JSON written differently (here: other spacing) is another body."""
    assert api.post(CREATE, BODY, keyed("bytes")).status_code == 201
    spaced = json.dumps(BODY, indent=2).encode()
    headers = {**api.headers, **keyed("bytes"), "Content-Type": "application/json"}
    response = api.client.post(f"/api/v1{CREATE}", content=spaced, headers=headers)
    assert response.status_code == 409


def test_the_same_key_on_another_route_is_409(api: Api) -> None:
    created = api.post(CREATE, BODY, keyed("route")).json()
    response = api.post("/workflows/delete", {"workflowId": created["id"]}, keyed("route"))
    assert response.status_code == 409
    assert api.get("/workflows/get", id=created["id"]).json()["deletedAt"] is None


def test_without_a_key_every_post_runs(api: Api) -> None:
    api.post(CREATE, BODY)
    api.post(CREATE, BODY)
    assert len(listed(api)) == 2


@pytest.mark.sqlite_only
@pytest.mark.parametrize("key", ["", "k" * 256])
def test_a_key_outside_1_to_255_characters_is_400_naming_the_header(api: Api, key: str) -> None:
    response = api.post(CREATE, BODY, keyed(key))

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert listed(api) == []


def test_a_key_of_255_characters_is_accepted(api: Api) -> None:
    first = api.post(CREATE, BODY, keyed("k" * 255))
    again = api.post(CREATE, BODY, keyed("k" * 255))
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]


def test_keys_are_per_project(api: Api, other_api: Api) -> None:
    mine = api.post(CREATE, BODY, keyed("shared"))
    theirs = other_api.post(CREATE, BODY, keyed("shared"))
    other_body = other_api.post(CREATE, {**BODY, "name": "Theirs"}, keyed("mine-only"))
    my_other = api.post(CREATE, {**BODY, "name": "Mine"}, keyed("mine-only"))

    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert other_body.status_code == my_other.status_code == 201
    assert {item["name"] for item in listed(api)} == {"Release hardening", "Mine"}
    assert {item["name"] for item in listed(other_api)} == {"Release hardening", "Theirs"}


@pytest.mark.parametrize("authorization", [None, "Bearer wfs_not-a-key", "Basic abc"])
def test_a_repeat_without_a_valid_key_is_401_never_a_replay(api: Api, authorization: str | None) -> None:
    assert api.post(CREATE, BODY, keyed("secret-answer")).status_code == 201
    headers = keyed("secret-answer") | ({"Authorization": authorization} if authorization else {})
    response = api.client.post(f"/api/v1{CREATE}", json=BODY, headers=headers)

    assert response.status_code == 401
    assert "idempotent-replayed" not in response.headers


def test_a_revoked_key_gets_401_not_the_replay(api: Api, services: Services) -> None:
    assert api.post(CREATE, BODY, keyed("revoked")).status_code == 201
    for key in services.accounts.list_keys():
        if key.project_id == api.project_id:
            services.accounts.revoke_key(key.key_id)
    assert api.post(CREATE, BODY, keyed("revoked")).status_code == 401


def test_a_4xx_answer_is_remembered(api: Api) -> None:
    """A refused restore, repeated after the workflow was deleted, answers the first 409 again."""
    workflow = api.post(CREATE, BODY).json()
    restore = {"workflowId": workflow["id"]}
    refused = api.post("/workflows/restore", restore, keyed("restore-1"))
    assert api.post("/workflows/delete", restore).status_code == 200

    repeated = api.post("/workflows/restore", restore, keyed("restore-1"))
    fresh = api.post("/workflows/restore", restore, keyed("restore-2"))

    assert refused.status_code == repeated.status_code == 409
    assert repeated.content == refused.content
    assert repeated.headers["idempotent-replayed"] == "true"
    assert fresh.status_code == 200


def test_a_repeated_delete_answers_its_first_success(api: Api) -> None:
    workflow = api.post(CREATE, BODY).json()
    first = api.post("/workflows/delete", {"workflowId": workflow["id"]}, keyed("delete"))
    again = api.post("/workflows/delete", {"workflowId": workflow["id"]}, keyed("delete"))
    assert first.status_code == again.status_code == 200
    assert again.content == first.content


def test_a_5xx_answer_is_not_remembered(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry of a request that failed on the server runs again, and succeeds."""
    real_create = services.workflows.create_workflow

    def fail_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(services.workflows, "create_workflow", real_create)
        raise RuntimeError("the server broke")

    monkeypatch.setattr(services.workflows, "create_workflow", fail_once)
    failed = api.post(CREATE, BODY, keyed("flaky"))
    retried = api.post(CREATE, BODY, keyed("flaky"))

    assert failed.status_code >= 500
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert [item["id"] for item in listed(api)] == [retried.json()["id"]]


def test_a_400_for_the_body_does_not_hide_a_later_valid_key_use(api: Api) -> None:
    """Validation answers are kept too: the same bad bytes get the same 400, other bytes a 409."""
    bad = api.post(CREATE, {"name": ""}, keyed("bad-body"))
    again = api.post(CREATE, {"name": ""}, keyed("bad-body"))
    assert bad.status_code == again.status_code == 400
    assert again.headers["idempotent-replayed"] == "true"
    assert api.post(CREATE, BODY, keyed("bad-body")).status_code == 409


@pytest.mark.sqlite_only
def test_a_body_over_the_limit_is_413_and_claims_nothing(api: Api, services: Services) -> None:
    huge = {**BODY, "description": "x" * (3 * 1024 * 1024)}
    response = api.post(CREATE, huge, keyed("huge"))
    assert response.status_code == 413
    assert record_count(services) == 0


def test_a_record_older_than_24_hours_is_ignored(api: Api, services: Services) -> None:
    first = api.post(CREATE, BODY, keyed("old"))
    backdate(services, 24 * 60 * 60 + 60)
    later = api.post(CREATE, BODY, keyed("old"))
    again = api.post(CREATE, BODY, keyed("old"))

    assert later.status_code == 201
    assert later.json()["id"] != first.json()["id"]
    assert again.json()["id"] == later.json()["id"]
    assert len(listed(api)) == 2


def test_expired_records_are_purged(api: Api, services: Services) -> None:
    api.post(CREATE, BODY, keyed("to-purge"))
    backdate(services, 24 * 60 * 60 + 60)
    api.post(CREATE, BODY, keyed("kept"))
    # A new process purges on its first keyed request.
    with TestClient(create_app(services=services)) as client:
        again = Api(client, api.key, api.project_id)
        assert again.post(CREATE, {**BODY, "name": "Another"}, keyed("trigger")).status_code == 201
    with services.database.transaction(commit=False) as tx:
        keys = {
            row["idempotency_key"]
            for row in tx.execute("SELECT idempotency_key FROM idempotency_keys").fetchall()
        }
    assert keys == {"kept", "trigger"}


def pending_claim(services: Services, api: Api, key: str) -> None:
    """What a request that is still running (or crashed) leaves behind: a claim with no answer."""
    body = json.dumps(BODY).encode()
    fingerprint = Fingerprint(f"/api/v1{CREATE}", hashlib.sha256(body).hexdigest())
    IdempotencyRecords(services.database, services.workflows.data_keys).claim(
        f"project:{api.project_id}", key, fingerprint
    )


def post_raw(api: Api, key: str) -> Any:
    headers = {**api.headers, **keyed(key), "Content-Type": "application/json"}
    return api.client.post(f"/api/v1{CREATE}", content=json.dumps(BODY).encode(), headers=headers)


def test_a_repeat_of_a_request_still_running_is_409_in_progress(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(middleware, "WAIT_SECONDS", 0.2)
    pending_claim(services, api, "running")

    response = post_raw(api, "running")

    assert response.status_code == 409
    assert response.json()["type"].endswith("/idempotency-key-in-progress")
    assert response.headers["retry-after"] == "1"
    assert listed(api) == []


def test_an_abandoned_claim_expires(api: Api, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "WAIT_SECONDS", 0.2)
    pending_claim(services, api, "crashed")
    backdate(services, PENDING_SECONDS + 1)

    response = post_raw(api, "crashed")
    again = post_raw(api, "crashed")

    assert response.status_code == 201
    assert again.json()["id"] == response.json()["id"]
    assert len(listed(api)) == 1


def test_simultaneous_repeats_store_one_workflow_and_answer_alike(api: Api) -> None:
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda _: api.post(CREATE, BODY, keyed("burst")), range(24)))

    assert {response.status_code for response in responses} == {201}
    assert len({response.content for response in responses}) == 1
    assert len(listed(api)) == 1


def test_a_restarted_service_replays_from_the_store(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, files_dir=tmp_path / "files")
    first_services = Services(settings)
    project = first_services.accounts.create_project("restart")
    with TestClient(create_app(services=first_services)) as client:
        first = Api(client, project.secret, project.project_id).post(CREATE, BODY, keyed("restart"))
    first_services.close()

    second_services = Services(settings)
    try:
        with TestClient(create_app(services=second_services)) as client:
            api = Api(client, project.secret, project.project_id)
            again = api.post(CREATE, BODY, keyed("restart"))
            assert again.status_code == 201
            assert again.content == first.content
            assert len(listed(api)) == 1
    finally:
        second_services.close()


def test_every_api_post_declares_the_header_in_openapi(client: TestClient[Any]) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    posts = {
        path: item["post"] for path, item in paths.items() if "post" in item and path.startswith("/api/v1/")
    }
    gets = [item["get"] for item in paths.values() if "get" in item]

    assert posts
    for operation in posts.values():
        declared = [p for p in operation.get("parameters", []) if p["name"] == "Idempotency-Key"]
        assert declared
        assert declared[0]["in"] == "header"
        assert declared[0]["schema"]["maxLength"] == 255
    assert not any(p["name"] == "Idempotency-Key" for op in gets for p in op.get("parameters", []))

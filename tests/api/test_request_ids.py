"""`X-Request-Id` over HTTP on both stores: on every answer, in every stored event, in history and audit."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.logs import JsonFormatter
from api.request_ids import HEADER, MAX_LENGTH
from composition.services import Services
from composition.settings import MAX_BODY_BYTES
from domain.request_context import current_request_id
from domain.workflow_content import WorkflowContent
from tests.support.client import Api, send
from tests.support.data import PNG, STEPS

GENERATED = re.compile(r"[0-9a-f]{32}")
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def rid(response: Any) -> str:
    values: list[str] = response.headers.get_list(HEADER)
    assert len(values) == 1, values
    return values[0]


def tagged(value: str) -> dict[str, str]:
    return {HEADER: value}


def stored_request_ids(services: Services, aggregate_id: str) -> list[str | None]:
    """What each stored event of the aggregate says caused it, read back through the store's mapper."""
    mapper = services.workflows.mapper
    stored = services.workflows.recorder.select_events(UUID(aggregate_id))
    return [getattr(mapper.to_domain_event(event), "request_id", "missing") for event in stored]


@pytest.mark.sqlite_only
def test_an_answer_to_a_request_without_an_id_gets_a_new_one(client: TestClient[Any]) -> None:
    first, second = client.get("/health"), client.get("/health")
    assert GENERATED.fullmatch(rid(first))
    assert GENERATED.fullmatch(rid(second))
    assert rid(first) != rid(second)


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    "value",
    ["a", "req-42", "01J9Z3K7Q8", "!" * MAX_LENGTH, "~{}[]:/=+_.\"'<>?@#$%^&*()|\\`,;"],
)
def test_a_valid_client_id_is_echoed(client: TestClient[Any], value: str) -> None:
    assert rid(client.get("/health", headers=tagged(value))) == value


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    "value",
    [
        b"x" * (MAX_LENGTH + 1),
        b"two words",
        b"tab\tinside",
        "caf\u00e9".encode(),
        "caf\u00e9".encode("latin-1"),
        b"del\x7f",
        b"",
    ],
    ids=["too-long", "space", "tab", "utf8", "latin1", "del", "empty"],
)
def test_an_invalid_client_id_is_replaced_not_refused(client: TestClient[Any], value: bytes) -> None:
    response = client.get("/health", headers={HEADER: value})
    assert response.status_code == 200
    assert GENERATED.fullmatch(rid(response))


@pytest.mark.sqlite_only
def test_two_ids_in_one_request_are_replaced(client: TestClient[Any]) -> None:
    response = client.get("/health", headers=[(HEADER, "first"), (HEADER, "second")])
    assert GENERATED.fullmatch(rid(response))


def failing_requests(api: Api, services: Services) -> dict[int, Any]:
    """One request per error status a client can cause, each sent with an id naming its status."""
    client = api.client
    created = api.create()
    reader = services.accounts.create_key(api.project_id, "reader", "read").secret

    def post(path: str, status: int, **kwargs: Any) -> Any:
        headers = {**api.headers, **kwargs.pop("headers", {}), **tagged(f"err-{status}")}
        return client.post(f"/api/v1{path}", headers=headers, **kwargs)

    return {
        400: post("/workflows/create", 400, json={"name": ""}),
        401: client.post("/api/v1/workflows/create", json={}, headers=tagged("err-401")),
        403: post(
            "/workflows/create", 403, json={"name": "x"}, headers={"Authorization": f"Bearer {reader}"}
        ),
        404: client.get("/api/v1/nothing-here", headers=tagged("err-404")),
        405: client.delete("/health", headers=tagged("err-405")),
        409: post("/workflows/update", 409, json={"workflowId": created["id"], "expectedVersion": 7}),
        413: post(
            "/workflows/create",
            413,
            content=b"[" + b" " * MAX_BODY_BYTES + b"]",
            headers={"Content-Type": "application/json"},
        ),
        415: post("/workflows/create", 415, content=b"name=x", headers={"Content-Type": "text/plain"}),
    }


def test_every_error_answer_carries_the_request_id(api: Api, services: Services) -> None:
    for status, response in failing_requests(api, services).items():
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), status
        assert rid(response) == f"err-{status}"


def test_an_unknown_workflow_is_a_404_with_the_request_id(api: Api) -> None:
    response = api.client.get(
        "/api/v1/workflows/get", params={"id": str(uuid.uuid4())}, headers={**api.headers, **tagged("nf")}
    )
    assert response.status_code == 404
    assert rid(response) == "nf"


def test_a_rate_limited_answer_carries_the_request_id(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WFS_RATE_LIMIT", "1")
    key = services.accounts.create_project("limited").secret
    with TestClient(create_app(services=services)) as client:
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get("/api/v1/workflows/list", headers=headers).status_code == 200
        limited = client.get("/api/v1/workflows/list", headers={**headers, **tagged("err-429")})
    assert limited.status_code == 429
    assert rid(limited) == "err-429"


def loopback_upload_url(api: Api) -> str:
    """An upload URL asked for as a client of a loopback address (a Host every configuration allows)."""
    headers = {**api.headers, "Host": "127.0.0.1"}
    response = api.client.post("/api/v1/files/upload-url", json={}, headers=headers)
    assert response.status_code == 200, response.text
    url: str = response.json()["uploadUrl"]
    return url


def test_health_ready_the_upload_route_and_the_openapi_document_carry_it(api: Api) -> None:
    client = api.client
    assert rid(client.get("/health", headers=tagged("h"))) == "h"
    assert rid(client.get("/ready", headers=tagged("r"))) == "r"
    assert rid(client.get("/schema/openapi.json", headers=tagged("s"))) == "s"
    url = loopback_upload_url(api)
    uploaded = client.post(url, content=PNG, headers={"Content-Type": "image/png", **tagged("up")})
    assert uploaded.status_code == 200, uploaded.text
    assert rid(uploaded) == "up"
    again = client.post(url, content=PNG, headers={"Content-Type": "image/png", **tagged("up-again")})
    assert again.status_code == 409
    assert rid(again) == "up-again"
    unknown = client.post("/uploads/" + "A" * 43, content=PNG, headers={"Content-Type": "image/png"})
    assert unknown.status_code == 404
    assert GENERATED.fullmatch(rid(unknown))
    assert GENERATED.fullmatch(rid(send(client, loopback_upload_url(api), b"%PDF-1.7\n")))


def test_every_workflow_write_stores_its_request_id(api: Api, services: Services) -> None:
    body = {"name": "Traced", "pipelineSteps": STEPS}
    created = api.post("/workflows/create", body, tagged("wf-create")).json()
    workflow_id = created["id"]
    writes = [
        ("/workflows/update", {"workflowId": workflow_id, "description": "second"}, "wf-update"),
        ("/workflows/rename", {"workflowId": workflow_id, "name": "Renamed"}, "wf-rename"),
        (
            "/workflows/versions/revert",
            {"workflowId": workflow_id, "versionId": f"{workflow_id}.v1"},
            "wf-revert",
        ),
        ("/workflows/delete", {"workflowId": workflow_id}, "wf-delete"),
        ("/workflows/restore", {"workflowId": workflow_id}, "wf-restore"),
    ]
    for path, write, request_id in writes:
        response = api.post(path, write, tagged(request_id))
        assert response.status_code == 200, response.text
        assert rid(response) == request_id

    expected = ["wf-create", "wf-update", "wf-rename", "wf-revert", "wf-delete", "wf-restore"]
    assert stored_request_ids(services, workflow_id) == expected
    history = api.get("/workflows/history", id=workflow_id).json()["items"]
    assert [item["requestId"] for item in history] == expected

    duplicate = api.post("/workflows/duplicate", {"workflowId": workflow_id}, tagged("wf-duplicate"))
    assert duplicate.status_code in (200, 201), duplicate.text
    assert stored_request_ids(services, duplicate.json()["id"]) == ["wf-duplicate"]


def test_every_run_write_stores_its_request_id(api: Api, services: Services) -> None:
    workflow = api.create()
    first = api.post("/runs/start", {"workflowId": workflow["id"], "prompt": "Fix it"}, tagged("run-start"))
    assert first.status_code == 201, first.text
    run_id = first.json()["id"]
    reported = api.post("/runs/report", {"runId": run_id, "status": "running"}, tagged("run-report"))
    assert reported.status_code == 200, reported.text
    cancelled = api.post("/runs/cancel", {"runId": run_id}, tagged("run-cancel"))
    assert cancelled.status_code == 200, cancelled.text

    assert stored_request_ids(services, run_id) == ["run-start", "run-report", "run-cancel"]
    items = api.get("/events", workflowId=workflow["id"]).json()["items"]
    assert [(item["type"], item["requestId"]) for item in items if item.get("runId") == run_id] == [
        ("run.started", "run-start"),
        ("run.reported", "run-report"),
        ("run.cancelled", "run-cancel"),
    ]


def test_the_request_id_stays_readable_after_a_permanent_delete(api: Api, services: Services) -> None:
    body = {"name": "Erased", "pipelineSteps": STEPS}
    workflow_id = api.post("/workflows/create", body, tagged("before-erase")).json()["id"]
    run = api.post("/runs/start", {"workflowId": workflow_id, "prompt": "p"}, tagged("run-before-erase"))
    erased = api.post("/workflows/permanent-delete", {"workflowId": workflow_id}, tagged("erase"))
    assert erased.status_code == 200, erased.text

    mapper = services.workflows.mapper
    stored = services.workflows.recorder.select_events(UUID(workflow_id))
    assert [mapper.clear_state(event).get("request_id") for event in stored] == ["before-erase", "erase"]
    run_events = services.workflows.recorder.select_events(UUID(run.json()["id"]))
    assert mapper.clear_state(run_events[0])["request_id"] == "run-before-erase"
    items = api.get("/events", workflowId=workflow_id).json()["items"]
    assert [item["requestId"] for item in items] == ["before-erase", "run-before-erase", "erase"]
    assert all(item["data"] == {"erased": True} for item in items)


def test_an_idempotent_replay_carries_the_new_request_id_and_stores_nothing(
    api: Api, services: Services
) -> None:
    body = {"name": "Once", "pipelineSteps": STEPS}
    key = uuid.uuid4().hex
    first = api.post("/workflows/create", body, {"Idempotency-Key": key, **tagged("first-try")})
    retry = api.post("/workflows/create", body, {"Idempotency-Key": key, **tagged("retry")})

    assert first.status_code == retry.status_code == 201
    assert retry.headers.get("idempotent-replayed") == "true"
    assert rid(first) == "first-try"
    assert rid(retry) == "retry"
    assert stored_request_ids(services, first.json()["id"]) == ["first-try"]


def test_a_generated_id_is_the_one_stored(api: Api, services: Services) -> None:
    response = api.post("/workflows/create", {"name": "Untagged", "pipelineSteps": STEPS})
    assert GENERATED.fullmatch(rid(response))
    assert stored_request_ids(services, response.json()["id"]) == [rid(response)]


def test_events_stored_outside_a_request_have_no_request_id(api: Api, services: Services) -> None:
    """A CLI command or script stores events without a request: `request_id` is None, nothing is written."""
    content = WorkflowContent.from_data({"name": "Scripted", "pipelineSteps": STEPS})
    saved = services.workflows.create_workflow(
        {"keyId": "script", "keyName": "a script"}, api.project_id, content
    )
    workflow_id = str(saved.workflow.id)
    assert stored_request_ids(services, workflow_id) == [None]
    stored = services.workflows.recorder.select_events(UUID(workflow_id))
    assert "request_id" not in services.workflows.mapper.clear_state(stored[0])
    assert current_request_id.get() is None


@contextmanager
def log_lines_of() -> Iterator[list[dict[str, Any]]]:
    """The JSON lines the service's loggers write while the test runs, formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("workflow_service")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines += [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_request_writes_one_access_line_with_its_id_route_and_key(api: Api, services: Services) -> None:
    principal = services.accounts.authenticate(api.key)
    assert principal is not None
    with log_lines_of() as lines:
        created = api.post(
            "/workflows/create", {"name": "Logged", "pipelineSteps": STEPS}, tagged("logged-1")
        )
        listed = api.client.get(
            "/api/v1/workflows/list?limit=5", headers={**api.headers, **tagged("logged-2")}
        )
        unknown = api.client.get("/api/v1/no/such/route?secret=1", headers=tagged("logged-3"))

    access = [line for line in lines if line["logger"] == "workflow_service.access"]
    assert [line["requestId"] for line in access] == ["logged-1", "logged-2", "logged-3"]
    create, read, missing = access
    assert (create["method"], create["route"], create["status"]) == ("POST", "/api/v1/workflows/create", 201)
    assert (read["method"], read["route"], read["status"]) == ("GET", "/api/v1/workflows/list", 200)
    assert (missing["route"], missing["status"], missing["keyId"]) == (None, 404, None)
    assert [created.status_code, listed.status_code, unknown.status_code] == [201, 200, 404]
    assert create["project"] == read["project"] == principal.project_id
    assert create["keyId"] == read["keyId"] == principal.key_id
    assert all(isinstance(line["durationMs"], float) and line["durationMs"] >= 0 for line in access)
    assert all(TIME.fullmatch(line["time"]) for line in lines)
    assert api.key not in json.dumps(lines)
    assert "secret" not in json.dumps(lines)


@pytest.mark.sqlite_only
def test_an_error_line_names_the_exception_with_its_traceback_and_request_id(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(services.workflows, "create_workflow", broken)
    with log_lines_of() as lines:
        response = api.post("/workflows/create", {"name": "x", "pipelineSteps": STEPS}, tagged("err-500"))

    assert response.status_code == 500
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["requestId"] == "err-500"
    assert errors[0]["error"] == "RuntimeError"
    assert "Traceback" in errors[0]["traceback"]
    assert "RuntimeError: boom" in errors[0]["traceback"]
    access = [line for line in lines if line["logger"] == "workflow_service.access"]
    assert [(line["requestId"], line["status"]) for line in access] == [("err-500", 500)]


@pytest.mark.sqlite_only
def test_the_openapi_document_declares_the_header_on_every_route_and_answer(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            parameters = [p for p in operation.get("parameters", []) if p["name"] == HEADER]
            assert len(parameters) == 1, (path, method)
            assert parameters[0]["in"] == "header"
            assert parameters[0]["required"] is False
            for status, answer in operation["responses"].items():
                assert HEADER in answer.get("headers", {}), (path, method, status)

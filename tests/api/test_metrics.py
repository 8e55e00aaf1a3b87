"""Over HTTP: `GET /metrics` is Prometheus text with requests by route template and status, latency
histograms, the store's head and each read model's position and lag; with several workers, every
scrape counts every worker's requests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from api.app import create_app
from composition.services import Services
from domain.workflow_content import WorkflowContent
from tests.support.client import Api
from tests.support.data import ACTOR, STEPS
from tests.support.domain import head
from tests.support.servers import start_server, stop_server

GET_WORKFLOW = "/api/v1/workflows/get"


def scrape(client: TestClient[Any] | httpx.Client) -> list[Sample]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sample's value, 0 when there is none yet (a counter before its first increment)."""
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


def requests(samples: list[Sample], route: str, status: int, method: str = "GET") -> float:
    return value(samples, "wfs_http_requests_total", route=route, status=str(status), method=method)


def test_requests_are_counted_by_route_template_and_status(client: TestClient[Any], api: Api) -> None:
    before = scrape(client)
    workflow_id = api.create()["id"]
    for _ in range(2):
        assert api.get("/workflows/get", id=workflow_id).status_code == 200
    unknown = "wf_" + uuid.uuid4().hex  # well formed, stored nowhere
    assert api.get("/workflows/get", id=unknown).status_code in (400, 404)
    assert client.get(f"{GET_WORKFLOW}?id={workflow_id}").status_code == 401  # no key
    after = scrape(client)

    def counted(route: str, status: int, method: str = "GET") -> float:
        return requests(after, route, status, method) - requests(before, route, status, method)

    assert counted("/api/v1/workflows/create", 201, "POST") == 1
    assert counted(GET_WORKFLOW, 200) == 2
    assert counted(GET_WORKFLOW, 401) == 1
    assert counted(GET_WORKFLOW, 400) + counted(GET_WORKFLOW, 404) == 1
    routes = {s.labels["route"] for s in after if s.name == "wfs_http_requests_total"}
    assert not any(workflow_id in route or unknown in route for route in routes)
    assert "/metrics" not in routes  # the scrape itself is not counted


def test_answers_no_route_matched_and_answers_the_rate_limit_gave_are_counted_as_sent(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WFS_RATE_LIMIT", "2")  # read when the app is made
    key = services.accounts.create_project("limited").secret
    with TestClient(create_app(services=services)) as client:
        before = scrape(client)
        stray = "/no/such/" + uuid.uuid4().hex
        assert client.get(stray).status_code == 404
        assert client.delete("/health").status_code == 405
        assert client.request("BREW" + uuid.uuid4().hex[:6].upper(), "/health").status_code == 405
        answers = [
            client.get("/api/v1/workflows/list", headers={"Authorization": f"Bearer {key}"}).status_code
            for _ in range(3)
        ]
        assert answers == [200, 200, 429]
        after = scrape(client)

    def counted(route: str, status: int, method: str = "GET") -> float:
        return requests(after, route, status, method) - requests(before, route, status, method)

    assert counted("unmatched", 404) == 1  # by a fixed name, never the path asked for
    assert counted("unmatched", 405, "DELETE") == 1
    assert counted("unmatched", 405, "other") == 1  # a made-up method is not a label value of its own
    assert counted("/api/v1/workflows/list", 200) == 2
    assert counted("/api/v1/workflows/list", 429) == 1
    assert not any(stray in s.labels.get("route", "") for s in after)


def test_latency_is_a_histogram_per_route_and_status(client: TestClient[Any], api: Api) -> None:
    workflow_id = api.create()["id"]
    before = scrape(client)
    for _ in range(3):
        assert api.get("/workflows/get", id=workflow_id).status_code == 200
    after = scrape(client)

    labels = {"route": GET_WORKFLOW, "status": "200", "method": "GET"}
    name = "wfs_http_request_duration_seconds"
    assert value(after, f"{name}_count", **labels) - value(before, f"{name}_count", **labels) == 3
    assert value(after, f"{name}_sum", **labels) > value(before, f"{name}_sum", **labels)
    buckets = [s for s in after if s.name == f"{name}_bucket" and labels.items() <= s.labels.items()]
    assert len(buckets) > 5
    assert value(after, f"{name}_bucket", le="+Inf", **labels) == value(after, f"{name}_count", **labels)


def test_the_store_and_every_read_model_are_gauges_read_when_scraped(
    services: Services, client: TestClient[Any], api: Api
) -> None:
    api.create()
    samples = scrape(client)
    assert value(samples, "wfs_store_up") == 1
    assert value(samples, "wfs_events_stored") == head(services) > 0
    assert value(samples, "wfs_read_model_skipped_events") == 0
    for view, position in services.projector.positions().items():
        assert value(samples, "wfs_read_model_position", view=view) == position == head(services)
        assert value(samples, "wfs_read_model_lag_events", view=view) == 0
        assert value(samples, "wfs_read_model_lag_seconds", view=view) == 0


def test_events_the_views_have_not_applied_show_as_lag(
    services: Services, client: TestClient[Any], api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.create()
    applied = head(services)
    services.stop_following()  # its follower (or leader) must not move a view behind the test's back
    monkeypatch.setattr(
        services.projector, "catch_up", lambda *_, **__: None
    )  # the service's catch-up paused
    other = Services(services.settings, create_tables=False)
    try:
        for name in ("one", "two"):
            content = WorkflowContent.from_data({"name": name, "pipelineSteps": STEPS})
            other.workflows.create_workflow(ACTOR, api.project_id, content)
    finally:
        other.close()

    samples = scrape(client)
    assert value(samples, "wfs_events_stored") == applied + 2
    views = services.projector.positions()
    for view in views:
        assert value(samples, "wfs_read_model_position", view=view) == applied
        assert value(samples, "wfs_read_model_lag_events", view=view) == 2
        assert value(samples, "wfs_read_model_lag_seconds", view=view) > 0


def test_metrics_need_no_key(client: TestClient[Any]) -> None:
    assert client.get("/metrics").status_code == 200


@pytest.fixture
def two_workers(database_url: str) -> Iterator[httpx.Client]:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers need PostgreSQL: `serve` refuses --workers 2 on SQLite")
    server = start_server(database_url, workers=2)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client
    stop_server(server)


def test_with_two_workers_every_scrape_counts_every_workers_requests(two_workers: httpx.Client) -> None:
    before = requests(scrape(two_workers), "/health", 200)
    sent = 40
    for _ in range(sent):
        # a new connection each time, so the workers share them
        assert httpx.get(f"{two_workers.base_url}/health", timeout=30).status_code == 200
    for _ in range(6):  # each scrape is answered by either worker
        assert requests(scrape(two_workers), "/health", 200) - before == sent

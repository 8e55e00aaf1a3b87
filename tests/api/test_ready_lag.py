"""Over HTTP: `/ready` shows each read model's position and how far it trails the store, in events and
in seconds, beside any event a view skipped; past the bound it answers 503 saying which view lags."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from composition.services import Services
from domain.service import Saved
from domain.workflow import Workflow
from projections.workflow_summary import WorkflowSummaryProjection
from tests.support.client import Api
from tests.support.domain import a_workflow, head
from tests.support.failing_views import fail_on
from tests.support.views import catch_up, view_named

ROUNDING = 1e-3
"""Seconds of slack for the service's rounding when comparing its lag with the clock here."""


@pytest.fixture
def elsewhere(services: Services) -> Iterator[Services]:
    """Another process's services over the same store: the service learns of its writes by catching up."""
    other = Services(services.settings, create_tables=False)
    yield other
    other.close()


def pause_catch_up(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's catch-up after its own writes does nothing until undone, and its follower is
    stopped (once a catch-up it had begun has ended), so no view moves behind the test's back."""
    services.stop_following()
    monkeypatch.setattr(services.projector, "catch_up", lambda *_, **__: None)


def ready(client: TestClient[Any]) -> dict[str, Any]:
    response = client.get("/ready")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def write_behind(other: Services, project_id: str, name: str) -> Saved:
    return a_workflow(other, project_id, name, settle=False)


def test_caught_up_every_view_is_at_the_head_with_no_lag(
    services: Services, client: TestClient[Any], api: Api
) -> None:
    api.create()
    body = ready(client)
    assert body["status"] == "ready"
    assert body["head"] == head(services) > 0
    assert set(body["projections"]) == set(services.projector.positions())
    assert {"workflow_summary", "audit"} <= set(body["projections"])
    for view in body["projections"].values():
        assert view == {"position": body["head"], "lagEvents": 0, "lagSeconds": 0}


def test_events_stored_behind_the_service_show_as_lag_in_events_and_seconds(
    services: Services,
    elsewhere: Services,
    client: TestClient[Any],
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api.create()
    pause_catch_up(services, monkeypatch)
    applied = head(services)
    oldest = write_behind(elsewhere, api.project_id, "first unapplied")
    write_behind(elsewhere, api.project_id, "second unapplied")

    before = datetime.now(UTC)
    body = ready(client)
    after = datetime.now(UTC)

    assert body["status"] == "ready"  # within the bound
    assert body["head"] == head(services) == applied + 2
    stored_at = oldest.workflow.created_on
    for view in body["projections"].values():
        assert view["position"] == applied
        assert view["lagEvents"] == 2
        assert view["lagSeconds"] > 0
        # the age of the oldest event not applied, as the service's clock read it during the request
        assert (before - stored_at).total_seconds() - ROUNDING <= view["lagSeconds"]
        assert view["lagSeconds"] <= (after - stored_at).total_seconds() + ROUNDING


def test_each_view_shows_its_own_lag(
    services: Services,
    elsewhere: Services,
    client: TestClient[Any],
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api.create()
    pause_catch_up(services, monkeypatch)
    write_behind(elsewhere, api.project_id, "unapplied")
    catch_up(view_named(services, "audit"))  # one view caught up, the others still behind

    views = ready(client)["projections"]
    assert views["audit"] == {"position": head(services), "lagEvents": 0, "lagSeconds": 0}
    assert views["workflow_summary"]["position"] == head(services) - 1
    assert views["workflow_summary"]["lagEvents"] == 1
    assert views["workflow_summary"]["lagSeconds"] > 0


def test_once_caught_up_the_lag_is_gone(
    services: Services,
    elsewhere: Services,
    client: TestClient[Any],
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pause_catch_up(services, monkeypatch)
    write_behind(elsewhere, api.project_id, "unapplied")
    assert {view["lagEvents"] for view in ready(client)["projections"].values()} == {1}
    monkeypatch.undo()

    services.projector.catch_up()  # what the follower does every second
    for view in ready(client)["projections"].values():
        assert (view["lagEvents"], view["lagSeconds"]) == (0, 0)


def test_beyond_the_bound_ready_is_unavailable_and_says_which_view_lags(
    services: Services,
    elsewhere: Services,
    client: TestClient[Any],
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pause_catch_up(services, monkeypatch)
    monkeypatch.setattr("api.readiness.READY_LAG_BOUND", 1)
    write_behind(elsewhere, api.project_id, "one")
    assert client.get("/ready").status_code == 200  # at the bound
    write_behind(elsewhere, api.project_id, "two")

    response = client.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "is 2 events" in response.json()["detail"]


def test_a_skipped_event_stays_listed_beside_the_lag(
    services: Services,
    elsewhere: Services,
    client: TestClient[Any],
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fail_on(
        monkeypatch,
        WorkflowSummaryProjection,
        lambda event: isinstance(event, Workflow.Renamed),
        lambda: ValueError("cannot apply"),
    )
    workflow_id = api.create()["id"]
    renamed = api.post("/workflows/rename", {"workflowId": workflow_id, "name": "skipped by one view"})
    assert renamed.status_code == 200, renamed.text
    skipped_at = head(services)
    pause_catch_up(services, monkeypatch)
    write_behind(elsewhere, api.project_id, "unapplied")

    body = ready(client)
    assert body["status"] == "degraded"
    assert body["failureCount"] == 1
    [failure] = body["failures"]
    assert (failure["view"], failure["position"], failure["error"]) == (
        "workflow_summary",
        skipped_at,
        "ValueError",
    )
    summary = body["projections"]["workflow_summary"]
    assert (summary["position"], summary["lagEvents"]) == (skipped_at, 1)
    assert summary["lagSeconds"] > 0

"""The Analytics and Related tabs over HTTP on both stores: counts, buckets, costs, links, validation."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest

from composition.services import Services
from domain.backdating import collect_at, save_backdated
from domain.run import Run, RunNumber
from domain.run_values import RunReport, RunRequest, RunStatus
from projections.analytics_buckets import P95_RELATIVE_ERROR
from tests.support.client import Api
from tests.support.data import ACTOR, GPT, OPUS
from tests.support.views import replay_from_scratch, view_rows

ANSWER_FIELDS = {
    "workflowId",
    "days",
    "granularity",
    "from",
    "to",
    "kpis",
    "costBreakdown",
    "successRateSeries",
    "runsOverTime",
    "related",
}


def start(api: Api, workflow_id: str) -> dict[str, Any]:
    response = api.post("/runs/start", {"workflowId": workflow_id, "prompt": "Fix the flaky test"})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def report(api: Api, run_id: str, status: str, **fields: Any) -> dict[str, Any]:
    response = api.post("/runs/report", {"runId": run_id, "status": status, **fields})
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def cancel(api: Api, run_id: str) -> dict[str, Any]:
    response = api.post("/runs/cancel", {"runId": run_id})
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def analytics(api: Api, workflow_id: str, **params: Any) -> dict[str, Any]:
    response = api.get("/workflows/analytics", id=workflow_id, **params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def pin(services: Services, now: datetime) -> None:
    services.analytics.clock = lambda: now


def midnight(day: date) -> str:
    return f"{day.isoformat()}T00:00:00.000Z"


def five_runs(api: Api, workflow_id: str) -> list[dict[str, Any]]:
    """One of each outcome: succeeded, failed, cancelled while queued, running, queued."""
    done = start(api, workflow_id)
    report(api, done["id"], "running", costBreakdown=[OPUS])
    done = report(api, done["id"], "succeeded", costBreakdown=[GPT, OPUS])
    failed = start(api, workflow_id)
    report(api, failed["id"], "running")
    failed = report(api, failed["id"], "failed", costBreakdown=[{**OPUS, "costUsd": 0.5}], error="boom")
    cancelled = cancel(api, start(api, workflow_id)["id"])
    running = report(api, start(api, workflow_id)["id"], "running", costBreakdown=[GPT])
    queued = start(api, workflow_id)
    return [done, failed, cancelled, running, queued]


def test_kpis_costs_and_todays_bucket(api: Api, services: Services) -> None:
    workflow = api.create()
    runs = five_runs(api, workflow["id"])
    now = datetime.now(UTC)
    pin(services, now)
    answer = analytics(api, workflow["id"])
    assert set(answer) == ANSWER_FIELDS
    assert (answer["workflowId"], answer["days"], answer["granularity"]) == (workflow["id"], 30, "daily")
    assert answer["from"] == midnight(now.date() - timedelta(days=29))
    assert answer["to"] == now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    finished = runs[:3]
    durations = [run["durationMs"] for run in finished]
    kpis = answer["kpis"]
    assert kpis == {
        "totalRuns": 5,
        "succeededRuns": 1,
        "failedRuns": 1,
        "cancelledRuns": 1,
        "activeRuns": 2,
        "successRate": pytest.approx(1 / 3),
        "totalCostUsd": pytest.approx(1.25 + 0.1 + 1.25 + 0.5 + 0.1),
        "avgCostUsd": pytest.approx((2.6 + 0.5 + 0) / 3),
        "avgDurationMs": kpis["avgDurationMs"],
        "p95DurationMs": kpis["p95DurationMs"],
    }
    assert abs(kpis["avgDurationMs"] - sum(durations) / 3) <= 1
    assert max(durations) <= kpis["p95DurationMs"] <= max(durations) * (1 + P95_RELATIVE_ERROR)
    assert answer["costBreakdown"] == [
        {"model": "claude-opus-4-7", "cliId": "claude", "costUsd": pytest.approx(3.0), "runs": 2},
        {"model": "gpt-5", "cliId": "codex", "costUsd": pytest.approx(0.2), "runs": 2},
    ]
    series = answer["runsOverTime"]
    assert len(series) == 30
    assert series[0]["bucketStart"] == answer["from"]
    assert series[-1] == {
        "bucketStart": midnight(now.date()),
        "total": 5,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 1,
    }
    assert all(point["total"] == 0 for point in series[:-1])
    rates = answer["successRateSeries"]
    assert rates[-1] == {
        "bucketStart": midnight(now.date()),
        "runs": 5,
        "succeeded": 1,
        "successRate": pytest.approx(1 / 3),
    }
    assert all(point["successRate"] is None for point in rates[:-1])
    assert answer["related"] == {"personas": 0, "issues": 0, "learningVersions": 0}


def test_a_status_change_moves_the_count_on_the_creation_day(api: Api, services: Services) -> None:
    workflow = api.create()
    run = start(api, workflow["id"])
    pin(services, datetime.now(UTC))
    assert analytics(api, workflow["id"])["kpis"]["activeRuns"] == 1
    report(api, run["id"], "running")
    report(api, run["id"], "succeeded")
    kpis = analytics(api, workflow["id"])["kpis"]
    assert (kpis["totalRuns"], kpis["activeRuns"], kpis["succeededRuns"], kpis["successRate"]) == (
        1,
        0,
        1,
        1.0,
    )


def test_a_workflow_without_runs_has_zeros_and_null_rates(api: Api, services: Services) -> None:
    workflow = api.create()
    pin(services, datetime(2026, 11, 28, 9, tzinfo=UTC))
    answer = analytics(api, workflow["id"], days=60, granularity="monthly")
    assert answer["kpis"] == {
        "totalRuns": 0,
        "succeededRuns": 0,
        "failedRuns": 0,
        "cancelledRuns": 0,
        "activeRuns": 0,
        "successRate": None,
        "totalCostUsd": 0,
        "avgCostUsd": None,
        "avgDurationMs": None,
        "p95DurationMs": None,
    }
    assert answer["costBreakdown"] == []
    assert [p["bucketStart"] for p in answer["runsOverTime"]] == [
        midnight(date(2026, 9, 1)),
        midnight(date(2026, 10, 1)),
        midnight(date(2026, 11, 1)),
    ]
    assert all(p["successRate"] is None and p["runs"] == 0 for p in answer["successRateSeries"])


def test_the_first_day_of_the_window_counts_and_the_day_before_does_not(api: Api, services: Services) -> None:
    workflow = api.create()
    five_runs(api, workflow["id"])
    today = datetime.now(UTC)
    pin(services, today + timedelta(days=6))
    seven = analytics(api, workflow["id"], days=7)
    assert seven["from"] == midnight(today.date())
    assert seven["runsOverTime"][0]["total"] == 5
    assert seven["kpis"]["totalRuns"] == 5
    six = analytics(api, workflow["id"], days=6)
    assert six["kpis"]["totalRuns"] == 0
    assert six["costBreakdown"] == []
    assert six["kpis"]["successRate"] is None


def backdated_run(
    services: Services, api: Api, workflow_id: str, number: int, created: datetime, outcome: str
) -> None:
    """A run created at `created` that ran for ten minutes, stored through the domain with its times."""
    run = Run.start(ACTOR, api.project_id, (workflow_id, 1), number, RunRequest(prompt="imported"))
    events = collect_at(RunNumber.claim(api.project_id, number, run.id), created)
    events += collect_at(run, created)
    run.report(ACTOR, RunReport(status=RunStatus.RUNNING))
    events += collect_at(run, created + timedelta(minutes=1))
    run.report(ACTOR, msgspec.convert({"status": outcome, "costBreakdown": [GPT]}, RunReport))
    events += collect_at(run, created + timedelta(minutes=11))
    services.make_visible(save_backdated(services.workflows, events))


def test_a_week_straddling_a_month_and_a_year(api: Api, services: Services) -> None:
    workflow = api.create()
    days = [datetime(2026, 12, 27, 23, 59, tzinfo=UTC)]  # the Sunday before: outside a 7-day window
    days += [datetime(2026, 12, 28, tzinfo=UTC) + timedelta(days=n, hours=n) for n in range(7)]
    days += [datetime(2027, 1, 4, 0, 0, tzinfo=UTC)]  # the next Monday: after "now"
    for number, created in enumerate(days, start=1):
        backdated_run(services, api, workflow["id"], number, created, "failed" if number % 2 else "succeeded")
    pin(services, datetime(2027, 1, 3, 23, 0, tzinfo=UTC))
    weekly = analytics(api, workflow["id"], days=7, granularity="weekly")
    assert weekly["from"] == midnight(date(2026, 12, 28))
    assert weekly["runsOverTime"] == [
        {"bucketStart": midnight(date(2026, 12, 28)), "total": 7, "succeeded": 4, "failed": 3, "cancelled": 0}
    ]
    assert weekly["kpis"]["avgDurationMs"] == 600_000
    assert weekly["kpis"]["p95DurationMs"] == 600_000
    monthly = analytics(api, workflow["id"], days=7, granularity="monthly")
    assert [(p["bucketStart"], p["total"]) for p in monthly["runsOverTime"]] == [
        (midnight(date(2026, 12, 1)), 4),
        (midnight(date(2027, 1, 1)), 3),
    ]
    daily = analytics(api, workflow["id"], days=8)
    assert [p["total"] for p in daily["runsOverTime"]] == [1, 1, 1, 1, 1, 1, 1, 1]
    weeks = analytics(api, workflow["id"], days=8, granularity="weekly")
    assert [(p["bucketStart"], p["total"]) for p in weeks["runsOverTime"]] == [
        (midnight(date(2026, 12, 21)), 1),
        (midnight(date(2026, 12, 28)), 7),
    ]


def test_a_leap_day_is_its_own_bucket(api: Api, services: Services) -> None:
    workflow = api.create()
    for number, created in enumerate(
        [datetime(2028, 2, 28, 23, 59, tzinfo=UTC), datetime(2028, 2, 29, 12, tzinfo=UTC)], start=1
    ):
        backdated_run(services, api, workflow["id"], number, created, "succeeded")
    pin(services, datetime(2028, 3, 1, 8, tzinfo=UTC))
    daily = analytics(api, workflow["id"], days=3)
    assert [(p["bucketStart"], p["total"]) for p in daily["runsOverTime"]] == [
        (midnight(date(2028, 2, 28)), 1),
        (midnight(date(2028, 2, 29)), 1),
        (midnight(date(2028, 3, 1)), 0),
    ]
    assert len(analytics(api, workflow["id"], days=366)["runsOverTime"]) == 366
    assert len(analytics(api, workflow["id"], days=1)["runsOverTime"]) == 1


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"days": 0}, "days"),
        ({"days": 367}, "days"),
        ({"days": -3}, "days"),
        ({"days": "month"}, "days"),
        ({"days": "1.5"}, "days"),
        ({"granularity": "hourly"}, "granularity"),
        ({"granularity": "Daily"}, "granularity"),
        ({"granularity": ""}, "granularity"),
    ],
)
def test_analytics_refuses_bad_days_and_granularity(api: Api, params: dict[str, Any], field: str) -> None:
    workflow = api.create()
    response = api.get("/workflows/analytics", id=workflow["id"], **params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == field


@pytest.mark.sqlite_only
def test_analytics_and_related_need_an_id(api: Api) -> None:
    for path in ("/workflows/analytics", "/workflows/related"):
        response = api.get(path)
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "id"


def test_unknown_and_other_projects_workflows_are_404(api: Api, other_api: Api) -> None:
    theirs = other_api.create()
    for path in ("/workflows/analytics", "/workflows/related"):
        assert api.get(path, id=theirs["id"]).status_code == 404
        assert api.get(path, id="no-such-workflow").status_code == 404
        assert api.get(path, id="00000000-0000-0000-0000-000000000000").status_code == 404
        assert other_api.get(path, id=theirs["id"]).status_code == 200


@pytest.mark.sqlite_only
def test_analytics_needs_a_key(api: Api) -> None:
    workflow = api.create()
    response = api.client.get("/api/v1/workflows/analytics", params={"id": workflow["id"]})
    assert response.status_code == 401


def test_related_counts_distinct_runs_fills_names_and_lists_recent_first(
    api: Api, services: Services
) -> None:
    workflow = api.create()
    first = start(api, workflow["id"])
    report(
        api,
        first["id"],
        "running",
        links={"personas": [{"id": "p-alice"}], "issues": [{"id": "ISS-1", "name": "Flaky test"}]},
    )
    unnamed = api.get("/workflows/related", id=workflow["id"]).json()["personas"]
    assert unnamed == [{"id": "p-alice", "name": None, "runCount": 1, "lastRunAt": first["createdAt"]}]
    report(api, first["id"], "succeeded", links={"personas": [{"id": "p-alice", "name": "Alice"}]})
    second = start(api, workflow["id"])
    report(
        api,
        second["id"],
        "running",
        links={
            "personas": [{"id": "p-bob", "name": "Bob"}, {"id": "p-alice"}],
            "learningVersions": [{"id": "lv-3"}],
        },
    )
    answer = api.get("/workflows/related", id=workflow["id"]).json()
    assert answer == {
        "workflowId": workflow["id"],
        "personas": [
            {"id": "p-alice", "name": "Alice", "runCount": 2, "lastRunAt": second["createdAt"]},
            {"id": "p-bob", "name": "Bob", "runCount": 1, "lastRunAt": second["createdAt"]},
        ],
        "issues": [{"id": "ISS-1", "name": "Flaky test", "runCount": 1, "lastRunAt": first["createdAt"]}],
        "learningVersions": [{"id": "lv-3", "name": None, "runCount": 1, "lastRunAt": second["createdAt"]}],
    }
    third = start(api, workflow["id"])
    report(
        api, third["id"], "running", links={"personas": [{"id": "p-alice"}, {"id": "p-bob", "name": "Rob"}]}
    )
    personas = api.get("/workflows/related", id=workflow["id"]).json()["personas"]
    assert personas == [
        {"id": "p-alice", "name": "Alice", "runCount": 3, "lastRunAt": third["createdAt"]},
        {"id": "p-bob", "name": "Rob", "runCount": 2, "lastRunAt": third["createdAt"]},
    ]
    pin(services, datetime.now(UTC))
    assert analytics(api, workflow["id"])["related"] == {"personas": 2, "issues": 1, "learningVersions": 1}


def test_related_of_a_workflow_without_runs_is_empty(api: Api) -> None:
    workflow = api.create()
    assert api.get("/workflows/related", id=workflow["id"]).json() == {
        "workflowId": workflow["id"],
        "personas": [],
        "issues": [],
        "learningVersions": [],
    }


def test_a_soft_deleted_workflow_keeps_its_tabs_and_an_erased_one_loses_them(
    api: Api, services: Services
) -> None:
    workflow = api.create()
    kept = api.create("Kept")
    run = start(api, workflow["id"])
    report(api, run["id"], "running", links={"issues": [{"id": "ISS-9"}]}, costBreakdown=[GPT])
    report(api, start(api, kept["id"])["id"], "running", links={"issues": [{"id": "ISS-9"}]})
    pin(services, datetime.now(UTC))
    assert api.post("/workflows/delete", {"workflowId": workflow["id"]}).status_code == 200
    assert analytics(api, workflow["id"])["kpis"]["totalRuns"] == 1
    assert api.get("/workflows/related", id=workflow["id"]).json()["issues"][0]["id"] == "ISS-9"
    assert api.post("/workflows/permanent-delete", {"workflowId": workflow["id"]}).status_code == 200
    assert api.get("/workflows/analytics", id=workflow["id"]).status_code == 404
    assert api.get("/workflows/related", id=workflow["id"]).status_code == 404
    for table, rows in view_rows(services, "analytics", "related").items():
        assert all(workflow["id"] not in row for row in rows), table
    assert analytics(api, kept["id"])["kpis"]["totalRuns"] == 1
    assert len(api.get("/workflows/related", id=kept["id"]).json()["issues"]) == 1


def rebuilt(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    replay_from_scratch(services, "analytics", "related")
    return view_rows(services, "analytics", "related")


def test_the_views_equal_a_fresh_rebuild(api: Api, services: Services) -> None:
    workflow = api.create()
    erased = api.create("Erased")
    five_runs(api, workflow["id"])
    five_runs(api, erased["id"])
    linked = start(api, workflow["id"])
    report(api, linked["id"], "running", links={"personas": [{"id": "p1"}], "issues": [{"id": "i1"}]})
    report(api, linked["id"], "succeeded", links={"personas": [{"id": "p1", "name": "P"}, {"id": "p2"}]})
    assert api.post("/workflows/permanent-delete", {"workflowId": erased["id"]}).status_code == 200
    backdated_run(services, api, workflow["id"], 12, datetime.now(UTC) - timedelta(days=100), "failed")
    before = view_rows(services, "analytics", "related")
    assert before["analytics_daily"], "the view has rows to compare"
    assert rebuilt(services) == before
    pin(services, datetime.now(UTC))
    after = analytics(api, workflow["id"], days=366, granularity="monthly")
    assert (after["kpis"]["totalRuns"], after["kpis"]["failedRuns"]) == (7, 2)


@pytest.mark.sqlite_only
def test_analytics_answers_in_the_openapi_document(api: Api) -> None:
    schema = api.client.get("/schema/openapi.json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/workflows/analytics"]["get"]["parameters"]}
    assert parameters["days"]["schema"]["maximum"] == 366
    assert set(parameters["granularity"]["schema"]["enum"]) == {"daily", "weekly", "monthly"}
    assert "/api/v1/workflows/related" in schema["paths"]
    assert math.isclose(P95_RELATIVE_ERROR, 2 ** (1 / 16) - 1)

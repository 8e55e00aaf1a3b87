"""Fixtures for the fuzzers: a backend without a rate limit, real ids to aim at, and a request count."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api

FUZZED_REQUESTS: Counter[str] = Counter()
"""Requests each fuzzer sent, keyed by `file[store]`; printed at the end of the run."""


@pytest.fixture(autouse=True)
def no_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fuzzer sends thousands of requests a minute with one key; the limit would answer them all 429."""
    monkeypatch.setenv("WFS_RATE_LIMIT", "0")


@dataclass
class Targets:
    """Real ids of every kind and state, so fuzzed requests reach deep code paths, not only 404s."""

    workflow_ids: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    version_ids: list[str] = field(default_factory=list)

    @property
    def any_ids(self) -> list[str]:
        return [*self.workflow_ids, *self.run_ids, *self.version_ids]


def seed(api: Api, other_api: Api) -> Targets:
    """A live workflow with versions and runs in every state, a deleted one, an erased one, a foreign one."""
    targets = Targets()
    live = api.create("Fuzz target", description="seeded")
    api.post("/workflows/rename", {"workflowId": live["id"], "name": "Fuzz target, renamed"})
    deleted = api.create("Deleted target")
    api.post("/workflows/delete", {"workflowId": deleted["id"]})
    erased = api.create("Erased target")
    erased_run = start_run(api, erased["id"])
    api.post("/workflows/permanent-delete", {"workflowId": erased["id"]})
    foreign = other_api.create("Another project's workflow")
    targets.workflow_ids += [live["id"], deleted["id"], erased["id"], foreign["id"]]
    queued = start_run(api, live["id"])
    running = start_run(api, live["id"])
    api.post("/runs/report", {"runId": running, "status": "running"})
    finished = start_run(api, live["id"])
    api.post("/runs/report", {"runId": finished, "status": "running"})
    api.post(
        "/runs/report",
        {
            "runId": finished,
            "status": "succeeded",
            "costBreakdown": [{"model": "claude-opus-4-7", "cliId": "claude", "costUsd": 0.5}],
            "links": {"personas": [{"id": "persona-1", "name": "Reviewer"}]},
        },
    )
    targets.run_ids += [queued, running, finished, erased_run, start_run(other_api, foreign["id"])]
    versions = api.get("/workflows/versions", id=live["id"]).json()
    targets.version_ids += [entry["versionId"] for entry in versions["versions"]]
    return targets


def start_run(api: Api, workflow_id: str) -> str:
    response = api.post("/runs/start", {"workflowId": workflow_id, "prompt": "Fix the flaky test"})
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    return run_id


@pytest.fixture
def targets(api: Api, other_api: Api) -> Targets:
    return seed(api, other_api)


@pytest.fixture
def count_request(request: pytest.FixtureRequest) -> Any:
    """Call once per request sent; the totals are printed per fuzzer and store."""
    key = f"{Path(str(request.node.path)).name}[{request.node.callspec.params.get('database_url', '?')}]"

    def count(n: int = 1) -> None:
        FUZZED_REQUESTS[key] += n

    return count


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FUZZED_REQUESTS:
        sent = ", ".join(f"{key}: {n}" for key, n in sorted(FUZZED_REQUESTS.items()))
        terminalreporter.write_line(f"fuzzed requests: {sent}")

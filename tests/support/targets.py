"""Real ids of every kind and state for fuzzers to aim at, so requests reach more than the 404s."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.support.client import Api, start_run
from tests.support.data import OPUS


@dataclass
class Targets:
    """Ids of live, deleted, erased and foreign workflows, of runs in every state, and of versions."""

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
    erased_run = start_run(api, erased["id"])["id"]
    api.post("/workflows/permanent-delete", {"workflowId": erased["id"]})
    foreign = other_api.create("Another project's workflow")
    targets.workflow_ids += [live["id"], deleted["id"], erased["id"], foreign["id"]]
    queued, running, finished = (start_run(api, live["id"])["id"] for _ in range(3))
    api.post("/runs/report", {"runId": running, "status": "running"})
    api.post("/runs/report", {"runId": finished, "status": "running"})
    links = {"personas": [{"id": "persona-1", "name": "Reviewer"}]}
    api.post(
        "/runs/report", {"runId": finished, "status": "succeeded", "costBreakdown": [OPUS], "links": links}
    )
    targets.run_ids += [queued, running, finished, erased_run, start_run(other_api, foreign["id"])["id"]]
    versions = api.get("/workflows/versions", id=live["id"]).json()
    targets.version_ids += [entry["versionId"] for entry in versions["versions"]]
    return targets

"""Bulk seeding through the composition root: many aggregates per `save` (one transaction each).

HTTP would take hours for a million workflows; `Application.save(*aggregates)` stores a batch in
one transaction, and the read models are caught up afterwards, as a server's catch-up would.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from uuid import UUID

from composition.services import Services
from domain.workflow import Actor, Workflow
from domain.workflow_content import WorkflowChanges, WorkflowContent

from .figures import Plan

STEPS = [
    {"type": "designer", "cliId": "claude", "model": "claude-opus-4-7"},
    {"type": "implementer", "cliId": "codex", "model": "gpt-5"},
]
BATCH = 1000
VERSIONS_PER_SAVE = 500


@dataclass
class Seeded:
    """What the suite needs to know about the store it filled, and how long filling took."""

    project_id: str
    key: str
    workflow_ids: list[str] = field(default_factory=list)
    """A sample of the bulk workflows (for get and update): the first `sample` made."""
    long_id: str = ""
    short_id: str = ""
    long_versions: int = 0
    short_versions: int = 0
    runs: int = 0
    """Runs of the short workflow (added over HTTP once the server runs), for analytics."""
    listed: int = 0
    """How many list rows come before the deep page the suite reads."""
    save_seconds: float = 0.0
    catch_up_seconds: float = 0.0
    events: int = 0


def content(number: int) -> WorkflowContent:
    data = {"name": f"Workflow {number}", "description": f"Seeded workflow {number}", "pipelineSteps": STEPS}
    return WorkflowContent.from_data(data)


def seed_workflows(services: Services, project_id: str, actor: Actor, count: int) -> list[str]:
    """`count` one-version workflows saved `BATCH` per transaction; returns the ids of the first batch."""
    sample: list[str] = []
    started = time.monotonic()
    for first in range(0, count, BATCH):
        batch = [
            Workflow.create(project_id, actor, content(n)) for n in range(first, min(count, first + BATCH))
        ]
        services.workflows.save(*batch)
        sample = sample or [str(w.id) for w in batch]
        done = first + len(batch)
        if done % 50_000 == 0 or done == count:
            progress(f"{done:,} workflows saved, {done / (time.monotonic() - started):,.0f}/s")
    check = services.workflows.repository.get(UUID(sample[0])) if sample else None
    if check is not None and check.content.name != "Workflow 0":
        raise RuntimeError("a seeded workflow does not read back as it was saved")
    return sample


def seed_history(services: Services, project_id: str, actor: Actor, versions: int) -> str:
    """A workflow with `versions` content versions, saved in chunks (snapshots taken as writes take them)."""
    workflow = Workflow.create(project_id, actor, content(-versions))
    services.workflows.save(workflow)
    for start in range(2, versions + 1, VERSIONS_PER_SAVE):
        for version in range(start, min(start + VERSIONS_PER_SAVE, versions + 1)):
            workflow.update(actor, WorkflowChanges(description=f"version {version}"))
        services.workflows.save(workflow)
    return str(workflow.id)


def seed(services: Services, plan: Plan, catch_up: bool = True) -> Seeded:
    """A project and its key, the plan's bulk workflows, one long and one short history; the read
    models caught up unless `catch_up` is False (the caller rebuilds them instead)."""
    project = services.accounts.create_project("bench")
    actor: Actor = {"keyId": project.key_id, "keyName": "bench seed"}
    seeded = Seeded(project.project_id, project.secret)
    started = time.monotonic()
    seeded.workflow_ids = seed_workflows(services, project.project_id, actor, plan.workflows)
    seeded.long_id = seed_history(services, project.project_id, actor, plan.long_versions)
    seeded.short_id = seed_history(services, project.project_id, actor, plan.short_versions)
    seeded.long_versions, seeded.short_versions = plan.long_versions, plan.short_versions
    saved = time.monotonic()
    seeded.save_seconds = saved - started
    seeded.events = plan.workflows + plan.long_versions + plan.short_versions
    if not catch_up:
        return seeded
    progress(f"saved in {seeded.save_seconds:.1f} s; catching the read models up")
    services.projector.catch_up()
    seeded.catch_up_seconds = time.monotonic() - saved
    progress(f"read models caught up in {seeded.catch_up_seconds:.1f} s")
    return seeded


def progress(text: str) -> None:
    print(f"  seed: {text}", file=sys.stderr, flush=True)

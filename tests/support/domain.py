"""Writes straight through the domain services, as a script would, around the HTTP edge."""

from __future__ import annotations

from typing import Any

import msgspec

from composition.services import Services
from domain.run_values import RunReport, RunRequest
from domain.service import Saved
from domain.workflow_content import WorkflowContent
from tests.support.data import ACTOR, STEPS


def a_workflow(services: Services, project_id: str, name: str = "wf", *, settle: bool = True) -> Saved:
    """A new workflow with a one-step pipeline; `settle=False` leaves the read models behind."""
    content = WorkflowContent.from_data({"name": name, "pipelineSteps": STEPS})
    saved = services.workflows.create_workflow(ACTOR, project_id, content)
    if settle:
        services.make_visible(saved.position)
    return saved


def a_run(services: Services, project_id: str) -> tuple[str, str]:
    """A new workflow and one queued run of it: their ids."""
    workflow_id = str(a_workflow(services, project_id).workflow.id)
    started = services.runs.start_run(ACTOR, project_id, workflow_id, RunRequest(prompt="Fix the flaky test"))
    services.make_visible(started.position)
    return workflow_id, str(started.run.id)


def report(services: Services, project_id: str, run_id: str, **fields: Any) -> int:
    """A run report given as a request body spells it (`status`, `links`, …); its store position."""
    saved = services.runs.report_run(ACTOR, project_id, run_id, msgspec.convert(fields, RunReport))
    services.make_visible(saved.position)
    assert saved.position is not None
    return saved.position


def head(services: Services) -> int:
    """The position of the store's last event (0 when empty)."""
    return services.workflows.recorder.max_notification_id() or 0

"""The Run aggregate: one execution of a workflow, its lifecycle recorded as started, reported, cancelled.

As in the Workflow aggregate, commands check and prepare plain data, and a small `@event` method
only changes state; the explicit event classes keep their stored topics (`domain.run:Run.Reported`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidInput
from domain.run_values import FINISHED as FINISHED  # re-exported for the views
from domain.run_values import LINK_KINDS as LINK_KINDS
from domain.run_values import STATUSES as STATUSES
from domain.run_values import TRANSITIONS as TRANSITIONS
from domain.run_values import (
    CostLine,
    RunLinks,
    RunReport,
    RunRequest,
    RunStatus,
    check_https_url,
    check_ref_name,
    parse_status,
)
from domain.workflow import Actor, Sealed
from domain.workflow_content import SandboxConfig

RUN_NUMBER_NAMESPACE = uuid5(NAMESPACE_URL, "https://workflow-service.dev/run-numbers")

Data = dict[str, Any]
"""A typed value as events store it: plain data keyed as on the wire."""


def run_number_claim_id(project_id: str, run_number: int) -> UUID:
    """The id only the run numbered `run_number` in `project_id` can be stored under."""
    return uuid5(RUN_NUMBER_NAMESPACE, f"{project_id}:{run_number}")


class RunNumber(Aggregate):
    """A claimed run number: stored in the same transaction as its run, so numbers have no gaps."""

    class Claimed(Aggregate.Created):
        project_id: str
        run_number: int
        run_id: str

    def __init__(self, project_id: str, run_number: int, run_id: str) -> None:
        self.project_id = project_id
        self.run_number = run_number
        self.run_id = run_id

    @classmethod
    def claim(cls, project_id: str, run_number: int, run_id: UUID) -> RunNumber:
        return cls._create(
            cls.Claimed,
            id=run_number_claim_id(project_id, run_number),
            project_id=project_id,
            run_number=run_number,
            run_id=str(run_id),
        )


class RunContent(Sealed):
    """Marks run events: their content is sealed with their *workflow's* data key, so erasing the
    workflow erases its runs. What stays clear is what the audit trail shows, never what a user wrote.

    Events stored before runs were sealed are clear text and lack `workflow_id` on Reported and
    Cancelled; they load as they are (stored events never change).
    """

    key_owner_field: ClassVar[str] = "workflow_id"
    clear_fields: ClassVar[frozenset[str]] = frozenset(
        {
            "timestamp",
            "actor",
            "project_id",
            "originator_topic",
            "workflow_id",
            "workflow_version",
            "run_number",
            "status",
        }
    )


class Run(Aggregate):
    """One run of a workflow; status only moves along TRANSITIONS, and a finished run never changes."""

    class Started(Aggregate.Created, RunContent):
        project_id: str
        actor: Actor
        workflow_id: str
        workflow_version: int
        run_number: int
        prompt: str
        github_repo_url: str | None
        branch_name: str | None
        config: Data | None
        reference_image_ids: list[str]

    class Reported(Aggregate.Event, RunContent):
        actor: Actor
        workflow_id: str
        status: str | None
        branch_name: str | None
        pr_url: str | None
        cost_lines: list[Data]
        error: str | None
        links: Data

    class Cancelled(Aggregate.Event, RunContent):
        actor: Actor
        workflow_id: str

    def __init__(
        self,
        project_id: str,
        workflow_id: str,
        workflow_version: int,
        run_number: int,
        prompt: str,
        github_repo_url: str | None,
        branch_name: str | None,
        config: Data | None,
        reference_image_ids: list[str],
    ) -> None:
        self.project_id = project_id
        self.workflow_id = workflow_id
        self.workflow_version = workflow_version
        self.run_number = run_number
        self.prompt = prompt
        self.github_repo_url = github_repo_url
        self.branch_name = branch_name
        self.config = None if config is None else msgspec.convert(config, SandboxConfig)
        self.reference_image_ids = list(reference_image_ids)
        self.status = RunStatus.QUEUED
        self.pr_url: str | None = None
        self.error: str | None = None
        self.cost_lines: list[CostLine] = []
        self.links: dict[str, dict[str, str | None]] = {kind: {} for kind in LINK_KINDS}
        self.started_at: datetime | None = None
        self.completed_at: datetime | None = None

    @classmethod
    def start(
        cls,
        actor: Actor,
        project_id: str,
        workflow: tuple[str, int],
        run_number: int,
        request: RunRequest,
    ) -> Run:
        """A new queued run of a workflow (its id and content version); its number must be free."""
        if not request.prompt:
            raise InvalidInput("prompt", "must not be empty")
        if request.github_repo_url is not None:
            check_https_url(request.github_repo_url, "githubRepoUrl")
        if request.branch_name is not None:
            check_ref_name(request.branch_name)
        workflow_id, workflow_version = workflow
        return cls._create(
            cls.Started,
            id=uuid4(),
            project_id=project_id,
            actor=actor,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            run_number=run_number,
            prompt=request.prompt,
            github_repo_url=request.github_repo_url,
            branch_name=request.branch_name,
            config=None if request.config is None else msgspec.to_builtins(request.config),
            reference_image_ids=list(request.reference_image_ids),
        )

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def report(self, actor: Actor, report: RunReport) -> None:
        """Record what the runner says; an impossible transition is refused, nothing new is not stored."""
        status = parse_status(report.status)
        if self.is_finished:
            raise Conflict(f"the run is already {self.status}; a finished run does not change")
        if status not in TRANSITIONS[self.status]:
            raise Conflict(f"a {self.status} run cannot become {status}")
        if report.branch_name is not None:
            check_ref_name(report.branch_name)
        if report.pr_url is not None:
            check_https_url(report.pr_url, "prUrl")
        new_links = self._new_links(report.links or RunLinks())
        changes: Data = {
            "status": status.value if status != self.status else None,
            "branch_name": report.branch_name if report.branch_name != self.branch_name else None,
            "pr_url": report.pr_url if report.pr_url != self.pr_url else None,
            "cost_lines": [_cost_data(line) for line in report.cost_breakdown],
            "error": report.error if report.error != self.error else None,
        }
        if any(changes.values()) or any(new_links.values()):
            now = Run.Reported.create_timestamp()
            self._reported(actor, now, links=new_links, workflow_id=self.workflow_id, **changes)

    def cancel(self, actor: Actor) -> None:
        """Stop a queued or running run."""
        if self.is_finished:
            raise Conflict(f"the run is already {self.status}; only a queued or running run can be cancelled")
        self._cancelled(actor, Run.Cancelled.create_timestamp(), self.workflow_id)

    @event(Reported)
    def _reported(
        self,
        actor: Actor,
        timestamp: datetime,
        status: str | None,
        branch_name: str | None,
        pr_url: str | None,
        cost_lines: list[Data],
        error: str | None,
        links: Data,
        workflow_id: str | None = None,  # absent from events stored before runs were sealed
    ) -> None:
        if status is not None:
            self._move_to(RunStatus(status), timestamp)
        if branch_name is not None:
            self.branch_name = branch_name
        if pr_url is not None:
            self.pr_url = pr_url
        if error is not None:
            self.error = error
        self.cost_lines.extend(msgspec.convert(cost_lines, list[CostLine]))
        for kind in LINK_KINDS:
            for link in links.get(kind, []):
                self.links[kind][link["id"]] = link.get("name")

    @event(Cancelled)
    def _cancelled(self, actor: Actor, timestamp: datetime, workflow_id: str | None = None) -> None:
        self._move_to(RunStatus.CANCELLED, timestamp)

    def _move_to(self, status: RunStatus, at: datetime) -> None:
        """The status part of a report or cancel (the mutators' one shared step)."""
        self.status = status
        if status == RunStatus.RUNNING and self.started_at is None:
            self.started_at = at
        if status in FINISHED:
            self.completed_at = at

    def _new_links(self, links: RunLinks) -> Data:
        """Links the run lacks, or that name an entity anew; each id at most once per report."""
        given = msgspec.to_builtins(links)
        new: Data = {kind: [] for kind in LINK_KINDS}
        for kind in LINK_KINDS:
            known = dict(self.links[kind])
            for link in given.get(kind, []):
                link_id, name = link["id"], link.get("name")
                if link_id not in known or (name is not None and name != known[link_id]):
                    new[kind] = [entry for entry in new[kind] if entry["id"] != link_id]
                    new[kind].append({"id": link_id, "name": name})
                    known[link_id] = name
        return new


def _cost_data(line: CostLine) -> Data:
    """A cost line as events store it: keyed as on the wire, token counts present (None when unknown)."""
    data: Data = msgspec.to_builtins(line)
    data["costUsd"] = float(data["costUsd"])
    return data

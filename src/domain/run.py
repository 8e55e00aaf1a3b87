"""The Run aggregate: one execution of a workflow, its lifecycle recorded as started, reported, cancelled."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import Conflict, InvalidInput
from domain.workflow import Actor, Sealed

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"queued", "running", "cancelled"}),
    "running": frozenset({"running", "succeeded", "failed", "cancelled"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
"""Which status a report may set from each status; keeping the status is allowed until the run finishes."""

LINK_KINDS = ("personas", "issues", "learningVersions")
RUN_NUMBER_NAMESPACE = uuid5(NAMESPACE_URL, "https://workflow-service.dev/run-numbers")
URL_MAX = 2048
REF_FORBIDDEN = frozenset(" ~^:?*[\\")

Links = dict[str, list[dict[str, Any]]]
CostLine = dict[str, Any]


def check_https_url(value: str, field: str) -> str:
    """An absolute https URL with a host, and nothing a browser would have to guess about."""
    if len(value) > URL_MAX or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidInput(field, f"must be an https URL of at most {URL_MAX} characters, without spaces")
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        raise InvalidInput(field, "must be an https URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidInput(field, "must be an https URL with a host, such as https://github.com/acme/app")
    return value


def ref_name_problem(name: str) -> str | None:
    """Why `name` is not a valid git branch name (git check-ref-format --branch), or None if it is."""
    if not name:
        return "must not be empty"
    if name == "@":
        return "must not be '@'"
    if name.startswith("-"):
        return "must not start with '-'"
    if name.startswith("/") or name.endswith("/"):
        return "must not start or end with '/'"
    if name.endswith("."):
        return "must not end with '.'"
    if "//" in name:
        return "must not contain '//'"
    if ".." in name:
        return "must not contain '..'"
    if "@{" in name:
        return "must not contain '@{'"
    for ch in name:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return "must not contain control characters"
        if ch in REF_FORBIDDEN:
            return f"must not contain {ch!r}"
    for component in name.split("/"):
        if component.startswith("."):
            return "no '/'-separated part may start with '.'"
        if component.endswith(".lock"):
            return "no '/'-separated part may end with '.lock'"
    return None


def check_ref_name(value: str, field: str = "branchName") -> str:
    problem = ref_name_problem(value)
    if problem is not None:
        raise InvalidInput(field, f"not a valid git branch name: {problem}")
    return value


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
        config: dict[str, Any] | None
        reference_image_ids: list[str]

    class Reported(Aggregate.Event, RunContent):
        actor: Actor
        workflow_id: str
        status: str | None
        branch_name: str | None
        pr_url: str | None
        cost_lines: list[CostLine]
        error: str | None
        links: Links

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Run)
            if self.status is not None:
                aggregate.move_to(self.status, self.timestamp)
            if self.branch_name is not None:
                aggregate.branch_name = self.branch_name
            if self.pr_url is not None:
                aggregate.pr_url = self.pr_url
            if self.error is not None:
                aggregate.error = self.error
            aggregate.cost_lines.extend(self.cost_lines)
            for kind in LINK_KINDS:
                for link in self.links.get(kind, []):
                    aggregate.links[kind][link["id"]] = link.get("name")

    class Cancelled(Aggregate.Event, RunContent):
        actor: Actor
        workflow_id: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Run)
            aggregate.move_to("cancelled", self.timestamp)

    def __init__(
        self,
        project_id: str,
        actor: Actor,
        workflow_id: str,
        workflow_version: int,
        run_number: int,
        prompt: str,
        github_repo_url: str | None,
        branch_name: str | None,
        config: dict[str, Any] | None,
        reference_image_ids: list[str],
    ) -> None:
        self.project_id = project_id
        self.workflow_id = workflow_id
        self.workflow_version = workflow_version
        self.run_number = run_number
        self.prompt = prompt
        self.github_repo_url = github_repo_url
        self.branch_name = branch_name
        self.config = config
        self.reference_image_ids = list(reference_image_ids)
        self.status = "queued"
        self.pr_url: str | None = None
        self.error: str | None = None
        self.cost_lines: list[CostLine] = []
        self.links: dict[str, dict[str, str | None]] = {kind: {} for kind in LINK_KINDS}
        self.started_at: datetime | None = None
        self.completed_at: datetime | None = None

    @classmethod
    def start(
        cls,
        *,
        project_id: str,
        actor: Actor,
        workflow_id: str,
        workflow_version: int,
        run_number: int,
        prompt: str,
        github_repo_url: str | None = None,
        branch_name: str | None = None,
        config: dict[str, Any] | None = None,
        reference_image_ids: list[str] | None = None,
        run_id: UUID | None = None,
    ) -> Run:
        """A new queued run; its number must already be free (see RunNumber)."""
        if not prompt:
            raise InvalidInput("prompt", "must not be empty")
        if github_repo_url is not None:
            check_https_url(github_repo_url, "githubRepoUrl")
        if branch_name is not None:
            check_ref_name(branch_name)
        return cls._create(
            cls.Started,
            id=run_id or uuid4(),
            project_id=project_id,
            actor=actor,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            run_number=run_number,
            prompt=prompt,
            github_repo_url=github_repo_url,
            branch_name=branch_name,
            config=config,
            reference_image_ids=list(reference_image_ids or []),
        )

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def report(
        self,
        actor: Actor,
        status: str,
        *,
        branch_name: str | None = None,
        pr_url: str | None = None,
        cost_lines: list[CostLine] | None = None,
        error: str | None = None,
        links: Links | None = None,
    ) -> None:
        """Record what the runner says; an impossible transition is refused, nothing new is not stored."""
        if status not in STATUSES:
            raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
        if self.is_finished:
            raise Conflict(f"the run is already {self.status}; a finished run does not change")
        if status not in TRANSITIONS[self.status]:
            raise Conflict(f"a {self.status} run cannot become {status}")
        if branch_name is not None:
            check_ref_name(branch_name)
        if pr_url is not None:
            check_https_url(pr_url, "prUrl")
        new_links = self._new_links(links or {})
        changes: dict[str, Any] = {
            "status": status if status != self.status else None,
            "branch_name": branch_name if branch_name != self.branch_name else None,
            "pr_url": pr_url if pr_url != self.pr_url else None,
            "cost_lines": [_cost_line(line) for line in cost_lines or []],
            "error": error if error != self.error else None,
        }
        if not any(changes.values()) and not any(new_links.values()):
            return
        self.trigger_event(
            self.Reported, actor=actor, workflow_id=self.workflow_id, links=new_links, **changes
        )

    def cancel(self, actor: Actor) -> None:
        """Stop a queued or running run."""
        if self.is_finished:
            raise Conflict(f"the run is already {self.status}; only a queued or running run can be cancelled")
        self.trigger_event(self.Cancelled, actor=actor, workflow_id=self.workflow_id)

    def move_to(self, status: str, at: datetime) -> None:
        """Change state for a status event; runs on replay too, so it only assigns."""
        self.status = status
        if status == "running" and self.started_at is None:
            self.started_at = at
        if status in FINISHED:
            self.completed_at = at

    def _new_links(self, links: Links) -> Links:
        """Links the run lacks, or that name an entity anew; each id at most once per report."""
        new: Links = {kind: [] for kind in LINK_KINDS}
        for kind in LINK_KINDS:
            known = dict(self.links[kind])
            for link in links.get(kind, []):
                link_id, name = link["id"], link.get("name")
                if link_id not in known or (name is not None and name != known[link_id]):
                    new[kind] = [entry for entry in new[kind] if entry["id"] != link_id]
                    new[kind].append({"id": link_id, "name": name})
                    known[link_id] = name
        return new


def _cost_line(line: CostLine) -> CostLine:
    """A cost line keyed as on the wire, token counts present (None when unknown)."""
    return {
        "model": line["model"],
        "cliId": line["cliId"],
        "costUsd": float(line["costUsd"]),
        "inputTokens": line.get("inputTokens"),
        "outputTokens": line.get("outputTokens"),
    }

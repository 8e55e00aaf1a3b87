"""What a run is started with and what its runner reports, as typed values, and the rules they keep.

`RunRequest` and `RunReport` are the commands' own types: the API decodes a body straight into them
(its bodies subclass them), and the Run aggregate stores them as plain data in its events.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from msgspec import Meta

from domain.camel import CamelStruct
from domain.errors import InvalidInput
from domain.formats import URL_MAX, Url
from domain.workflow_content import SandboxConfig


class RunStatus(StrEnum):
    """Where a run is in its life; a string on the wire and in stored events."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


STATUSES = tuple(RunStatus)
FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset({RunStatus.RUNNING, *FINISHED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}
"""Which status a report may set from each status; keeping the status is allowed until the run finishes."""

LINK_KINDS = ("personas", "issues", "learningVersions")
"""The kinds of entity a run links to, as its events and views key them."""
REF_FORBIDDEN = frozenset(" ~^:?*[\\")
MAX_TOKENS = 2**53 - 1
"""The largest integer every JSON client reads exactly."""

Label = Annotated[str, Meta(min_length=1, max_length=200)]
Tokens = Annotated[int, Meta(ge=0, le=MAX_TOKENS)]
BranchName = Annotated[
    str, Meta(min_length=1, max_length=255, description="A valid git branch name (git check-ref-format)")
]
FileId = Annotated[str, Meta(max_length=200)]


class CostLine(CamelStruct, forbid_unknown_fields=True):
    """What one model on one CLI cost, as the runner reports it."""

    model: Label
    cli_id: Label
    cost_usd: Annotated[float, Meta(ge=0, le=1_000_000_000)]
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None


class LinkRef(CamelStruct, forbid_unknown_fields=True):
    """An entity a run worked with: a persona, an issue or a learning version."""

    id: Annotated[str, Meta(min_length=1, max_length=200)]
    name: Annotated[str, Meta(max_length=500)] | None = None


LinkList = Annotated[list[LinkRef], Meta(max_length=1_000)]


class RunLinks(CamelStruct, forbid_unknown_fields=True):
    """Entities a run worked with, by kind (each kind is one of LINK_KINDS on the wire)."""

    personas: LinkList = []
    issues: LinkList = []
    learning_versions: LinkList = []


class RunRequest(CamelStruct, kw_only=True):
    """What a run is asked to do; its workflow and number are the run service's to find."""

    prompt: Annotated[str, Meta(min_length=1, max_length=100_000)]
    github_repo_url: Url | None = None
    branch_name: BranchName | None = None
    config: SandboxConfig | None = None
    reference_image_ids: Annotated[list[FileId], Meta(max_length=100)] = []


class RunReport(CamelStruct, kw_only=True):
    """What a runner says about its run: a status, and whatever else it has learnt since."""

    status: RunStatus
    branch_name: BranchName | None = None
    pr_url: Url | None = None
    cost_breakdown: Annotated[list[CostLine], Meta(max_length=1_000)] = []
    error: Annotated[str, Meta(max_length=100_000)] | None = None
    links: RunLinks | None = None


def parse_status(value: str) -> RunStatus:
    """A status named by a caller that bypassed the edge's decoding (a script, a test)."""
    try:
        return RunStatus(value)
    except ValueError:
        raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}") from None


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
    for part in ("//", "..", "@{"):
        if part in name:
            return f"must not contain {part!r}"
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

"""Request bodies and response envelopes of the run routes; each body is decoded once, at the edge.

A start or report body *is* the domain's command (`RunRequest`, `RunReport`) plus the id of what it
names, so the handler passes the decoded body straight to the run service.
"""

from __future__ import annotations

from api.schemas import Body, Id
from domain.camel import CamelStruct
from domain.run_values import RunReport, RunRequest
from projections.runs_queries import RunDocument


class StartRun(RunRequest, kw_only=True, forbid_unknown_fields=True):
    """The workflow to run, and what the run is asked to do."""

    workflow_id: Id


class ReportRun(RunReport, kw_only=True, forbid_unknown_fields=True):
    """The run reported on, and what its runner says."""

    run_id: Id


class RunCommand(Body):
    """Cancel names one run."""

    run_id: Id


class RunPage(CamelStruct):
    """A page of a workflow's runs, newest first; pass `nextCursor` back as `cursor` for the next one."""

    items: list[RunDocument]
    next_cursor: str | None
    has_more: bool

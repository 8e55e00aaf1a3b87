"""The run routes: writes go through the run service, reads (and every answer) come from the runs view."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import JSONBody

from api.auth import CursorsDep, PrincipalDep, ServicesDep
from api.errors import READ_ERRORS, WRITE_ERRORS
from api.params import Cursor, Limit, RunId, WorkflowId
from api.run_schemas import ReportRun, RunCommand, RunPage, StartRun, to_wire
from domain.errors import NotFound
from domain.runs import SavedRun
from projections.runs import RunDocument, RunPageKey


def answer(backend: ServicesDep, project_id: str, saved: SavedRun) -> RunDocument:
    """The run as this write left it, once every read model reflects the write."""
    backend.settle(saved.position)
    run_id = str(saved.run.id)
    document = backend.runs_view.get(project_id, run_id)
    if document is None:
        raise NotFound(f"no run has id {run_id!r}")
    return document


class RunController(Controller):
    """Starting runs, and what their runners report about them."""

    path = "/runs"
    tags = ["runs"]

    @post(
        "/start",
        sync_to_thread=True,
        responses=WRITE_ERRORS,
        status_code=201,
        summary="Start a run of a workflow",
    )
    def start_run(
        self, backend: ServicesDep, principal: PrincipalDep, data: JSONBody[StartRun]
    ) -> RunDocument:
        if data.reference_image_ids:
            backend.files.check_reference_images(principal.project_id, data.reference_image_ids)
        saved = backend.runs.start_run(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            data.prompt,
            github_repo_url=data.github_repo_url,
            branch_name=data.branch_name,
            config=None if data.config is None else to_wire(data.config),
            reference_image_ids=data.reference_image_ids,
        )
        return answer(backend, principal.project_id, saved)

    @post(
        "/report",
        sync_to_thread=True,
        responses=WRITE_ERRORS,
        status_code=200,
        summary="Report a run's progress",
    )
    def report_run(
        self, backend: ServicesDep, principal: PrincipalDep, data: JSONBody[ReportRun]
    ) -> RunDocument:
        saved = backend.runs.report_run(
            principal.actor,
            principal.project_id,
            data.run_id,
            data.status,
            branch_name=data.branch_name,
            pr_url=data.pr_url,
            cost_lines=to_wire(data.cost_breakdown),
            error=data.error,
            links=None if data.links is None else to_wire(data.links),
        )
        return answer(backend, principal.project_id, saved)

    @post(
        "/cancel",
        sync_to_thread=True,
        responses=WRITE_ERRORS,
        status_code=200,
        summary="Cancel a queued or running run",
    )
    def cancel_run(
        self, backend: ServicesDep, principal: PrincipalDep, data: JSONBody[RunCommand]
    ) -> RunDocument:
        saved = backend.runs.cancel_run(principal.actor, principal.project_id, data.run_id)
        return answer(backend, principal.project_id, saved)

    @get("/get", sync_to_thread=True, responses=READ_ERRORS, summary="Get a run")
    def get_run(self, backend: ServicesDep, principal: PrincipalDep, id: RunId) -> RunDocument:
        document = backend.runs_view.get(principal.project_id, id)
        if document is None:
            raise NotFound(f"no run has id {id!r}")
        return document


class WorkflowRunsController(Controller):
    """The Runs tab of a workflow."""

    path = "/workflows"
    tags = ["workflows"]

    @get("/runs", sync_to_thread=True, responses=READ_ERRORS, summary="List a workflow's runs, newest first")
    def list_workflow_runs(
        self,
        backend: ServicesDep,
        cursors: CursorsDep,
        principal: PrincipalDep,
        id: WorkflowId,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> RunPage:
        if backend.summaries.get(principal.project_id, id) is None:
            raise NotFound(f"no workflow has id {id!r}")
        scope = f"runs:{principal.project_id}:{id}"
        after = None if cursor is None else RunPageKey(*cursors.decode(scope, cursor))
        items, last = backend.runs_view.page(principal.project_id, id, after=after, limit=limit)
        next_cursor = None if last is None else cursors.encode(scope, (last.created_key, last.run_id))
        return RunPage(items=items, next_cursor=next_cursor, has_more=last is not None)

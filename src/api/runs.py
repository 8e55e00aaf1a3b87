"""The run routes: writes go through the run service, reads (and every answer) come from the runs view."""

from __future__ import annotations

from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import JSONBody

from api.dependencies import (
    CURSORS,
    MAKE_VISIBLE,
    PRINCIPAL,
    CursorsDep,
    MakeVisibleDep,
    PrincipalDep,
    from_services,
)
from api.params import Cursor, Limit, RunId, WorkflowId
from api.routes import read, write
from api.run_schemas import ReportRun, RunCommand, RunPage, StartRun
from domain.errors import NotFound
from domain.runs import RunService, SavedRun
from projections.runs_queries import RunDocument, RunPageKey, Runs
from projections.workflow_summary_queries import WorkflowSummaries
from store.files import Files


def visible_answer(
    make_visible: MakeVisibleDep, runs_view: Runs, project_id: str, saved: SavedRun
) -> RunDocument:
    """The run as this write left it, once every read model reflects the write."""
    make_visible(saved.position)
    run_id = str(saved.run.id)
    document = runs_view.get(project_id, run_id)
    if document is None:
        raise NotFound(f"no run has id {run_id!r}")
    return document


class RunController(Controller):
    """Starting runs, and what their runners report about them."""

    path = "/runs"
    tags = ["runs"]
    dependencies = {
        "principal": PRINCIPAL,
        "runs": from_services(lambda services: services.runs),
        "runs_view": from_services(lambda services: services.runs_view),
        "files": from_services(lambda services: services.files),
        "make_visible": MAKE_VISIBLE,
    }

    @write("/start", "Start a run of a workflow", status_code=201)
    def start_run(
        self,
        runs: NamedDependency[RunService],
        runs_view: NamedDependency[Runs],
        files: NamedDependency[Files],
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[StartRun],
    ) -> RunDocument:
        if data.reference_image_ids:
            files.check_reference_images(principal.project_id, data.reference_image_ids)
        saved = runs.start_run(principal.actor, principal.project_id, data.workflow_id, data)
        return visible_answer(make_visible, runs_view, principal.project_id, saved)

    @write("/report", "Report a run's progress")
    def report_run(
        self,
        runs: NamedDependency[RunService],
        runs_view: NamedDependency[Runs],
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[ReportRun],
    ) -> RunDocument:
        saved = runs.report_run(principal.actor, principal.project_id, data.run_id, data)
        return visible_answer(make_visible, runs_view, principal.project_id, saved)

    @write("/cancel", "Cancel a queued or running run")
    def cancel_run(
        self,
        runs: NamedDependency[RunService],
        runs_view: NamedDependency[Runs],
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[RunCommand],
    ) -> RunDocument:
        saved = runs.cancel_run(principal.actor, principal.project_id, data.run_id)
        return visible_answer(make_visible, runs_view, principal.project_id, saved)

    @read("/get", "Get a run")
    def get_run(self, runs_view: NamedDependency[Runs], principal: PrincipalDep, id: RunId) -> RunDocument:
        document = runs_view.get(principal.project_id, id)
        if document is None:
            raise NotFound(f"no run has id {id!r}")
        return document


class WorkflowRunsController(Controller):
    """The Runs tab of a workflow."""

    path = "/workflows"
    tags = ["workflows"]
    dependencies = {
        "principal": PRINCIPAL,
        "cursors": CURSORS,
        "summaries": from_services(lambda services: services.summaries),
        "runs_view": from_services(lambda services: services.runs_view),
    }

    @read("/runs", "List a workflow's runs, newest first")
    def list_workflow_runs(
        self,
        summaries: NamedDependency[WorkflowSummaries],
        runs_view: NamedDependency[Runs],
        cursors: CursorsDep,
        principal: PrincipalDep,
        id: WorkflowId,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> RunPage:
        if summaries.get(principal.project_id, id) is None:
            raise NotFound(f"no workflow has id {id!r}")
        scope = f"runs:{principal.project_id}:{id}"
        after = None if cursor is None else RunPageKey(*cursors.decode(scope, cursor))
        items, last = runs_view.page(principal.project_id, id, after=after, limit=limit)
        next_cursor = None if last is None else cursors.encode(scope, (last.created_key, last.run_id))
        return RunPage(items=items, next_cursor=next_cursor, has_more=last is not None)

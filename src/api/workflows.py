"""The workflow routes: reads answer from the read models, writes go through the application service."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from api.audit import AsOf, document_as_of
from api.dependencies import (
    CURSORS,
    MAKE_VISIBLE,
    PRINCIPAL,
    CursorsDep,
    MakeVisibleDep,
    PrincipalDep,
    from_services,
)
from api.etags import ETAG, IfMatch, etag, expected
from api.params import Cursor, Limit, VersionNumber, WorkflowId
from api.routes import read, write
from api.schemas import (
    BulkDeleteResult,
    BulkDeleteResults,
    BulkDeleteWorkflows,
    CreateWorkflow,
    DuplicateWorkflow,
    PermanentlyDeleted,
    RenameWorkflow,
    RevertWorkflow,
    UpdateWorkflow,
    WorkflowCommand,
    WorkflowPage,
)
from domain.errors import InvalidInput, NotFound
from domain.service import Saved, WorkflowService
from domain.workflow import parse_version_id
from projections.audit_queries import AuditLog
from projections.documents import WorkflowDocument, render_document
from projections.workflow_summary_queries import PageKey, WorkflowSummaries
from projections.workflow_versions import (
    DEFAULT_VERSIONS_LIMIT,
    MAX_VERSIONS_LIMIT,
    VersionHistory,
    WorkflowVersions,
)

WorkflowsDep = NamedDependency[WorkflowService]


def visible_answer(make_visible: MakeVisibleDep, saved: Saved) -> WorkflowDocument:
    """The workflow as this write left it, once every read model reflects the write."""
    make_visible(saved.position)
    workflow = saved.workflow
    return render_document(
        str(workflow.id),
        workflow.content,
        workflow.content_version,
        workflow.created_on,
        workflow.modified_on,
        workflow.deleted_at,
    )


class WorkflowController(Controller):
    """Every tab of the workflow pages that is about the definition itself."""

    path = "/workflows"
    tags = ["workflows"]
    dependencies = {
        "principal": PRINCIPAL,
        "cursors": CURSORS,
        "workflows": from_services(lambda services: services.workflows),
        "summaries": from_services(lambda services: services.summaries),
        "history": from_services(lambda services: services.history),
        "audit": from_services(lambda services: services.audit),
        "make_visible": MAKE_VISIBLE,
    }

    @read("/list", "List workflows (or the trash)")
    def list_workflows(
        self,
        summaries: NamedDependency[WorkflowSummaries],
        cursors: CursorsDep,
        principal: PrincipalDep,
        limit: Limit = 50,
        cursor: Cursor = None,
        deleted: Annotated[bool, QueryParameter(description="true: list the trash instead")] = False,
    ) -> WorkflowPage:
        scope = f"workflows:{principal.project_id}:{int(deleted)}"
        after = None if cursor is None else PageKey(*cursors.decode(scope, cursor))
        items, last = summaries.page(principal.project_id, deleted=deleted, after=after, limit=limit)
        next_cursor = None if last is None else cursors.encode(scope, (last.updated_key, last.workflow_id))
        return WorkflowPage(items=items, next_cursor=next_cursor, has_more=last is not None)

    @read("/get", "Get a workflow, now or at a version", response_headers=[ETAG])
    def get_workflow(
        self,
        summaries: NamedDependency[WorkflowSummaries],
        history: NamedDependency[VersionHistory],
        audit: NamedDependency[AuditLog],
        principal: PrincipalDep,
        id: WorkflowId,
        version: VersionNumber = None,
        as_of: AsOf = None,
    ) -> Response[WorkflowDocument]:
        """Soft-deleted workflows too; `version=N` or `asOf=TIME` answers the document as it was then."""
        if as_of is not None:
            if version is not None:
                raise InvalidInput("asOf", "give version or asOf, not both")
            then = document_as_of(audit, history, principal.project_id, id, as_of)
            return Response(then, headers=etag(then.version))
        if version is None:
            document = summaries.get(principal.project_id, id)
        else:
            document = history.document(principal.project_id, id, version)
        if document is None:
            raise NotFound(f"no workflow has id {id!r}" + (f" at version {version}" if version else ""))
        return Response(document, headers=etag(document.version))

    @read("/versions", "List a workflow's content versions")
    def list_versions(
        self,
        history: NamedDependency[VersionHistory],
        cursors: CursorsDep,
        principal: PrincipalDep,
        id: WorkflowId,
        limit: Annotated[
            int, QueryParameter(ge=1, le=MAX_VERSIONS_LIMIT, description="Page size, 1 to 1000 (default 100)")
        ] = DEFAULT_VERSIONS_LIMIT,
        cursor: Cursor = None,
    ) -> WorkflowVersions:
        """Newest first, paged by version number; a cursor belongs to one workflow of one project."""
        scope = f"versions:{principal.project_id}:{id}"
        before = None if cursor is None else cursors.decode(scope, cursor)[0]
        versions = history.versions(principal.project_id, id, limit=limit, before=before)
        if versions is None:
            raise NotFound(f"no workflow has id {id!r}")
        if versions.has_more:
            versions.next_cursor = cursors.encode(scope, (versions.versions[-1].version, ""))
        return versions

    @write("/create", "Create a workflow", status_code=201)
    def create_workflow(
        self,
        workflows: WorkflowsDep,
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[CreateWorkflow],
    ) -> WorkflowDocument:
        saved = workflows.create_workflow(principal.actor, principal.project_id, data)
        return visible_answer(make_visible, saved)

    @write("/update", "Update any workflow fields")
    def update_workflow(
        self,
        workflows: WorkflowsDep,
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[UpdateWorkflow],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        saved = workflows.update_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            data,
            expected(data.expected_version, if_match),
        )
        return visible_answer(make_visible, saved)

    @write("/rename", "Rename a workflow")
    def rename_workflow(
        self,
        workflows: WorkflowsDep,
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[RenameWorkflow],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        saved = workflows.rename_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            data.name,
            expected(data.expected_version, if_match),
        )
        return visible_answer(make_visible, saved)

    @write("/versions/revert", "Revert to a version")
    def revert_workflow(
        self,
        workflows: WorkflowsDep,
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[RevertWorkflow],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        named = parse_version_id(data.version_id)
        if named is None or named[0] != data.workflow_id:
            raise NotFound(f"workflow {data.workflow_id!r} has no version {data.version_id!r}")
        saved = workflows.revert_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            named[1],
            expected(data.expected_version, if_match),
        )
        return visible_answer(make_visible, saved)

    @write("/duplicate", "Duplicate a workflow", status_code=201)
    def duplicate_workflow(
        self,
        workflows: WorkflowsDep,
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[DuplicateWorkflow],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        saved = workflows.duplicate_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            data.name,
            expected(data.expected_version, if_match),
        )
        return visible_answer(make_visible, saved)

    @write("/delete", "Move a workflow to the trash")
    def delete_workflow(
        self,
        workflows: WorkflowsDep,
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[WorkflowCommand],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        saved = workflows.delete_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            expected(data.expected_version, if_match),
        )
        return visible_answer(make_visible, saved)

    @write("/restore", "Restore from the trash")
    def restore_workflow(
        self,
        workflows: WorkflowsDep,
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[WorkflowCommand],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        saved = workflows.restore_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            expected(data.expected_version, if_match),
        )
        return visible_answer(make_visible, saved)

    @write("/permanent-delete", "Erase a workflow")
    def permanently_delete_workflow(
        self,
        workflows: WorkflowsDep,
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[WorkflowCommand],
        if_match: IfMatch = None,
    ) -> PermanentlyDeleted:
        saved = workflows.permanently_delete_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            expected(data.expected_version, if_match),
        )
        make_visible(saved.position)
        return PermanentlyDeleted(workflow_id=data.workflow_id)

    @write("/bulk-delete", "Trash many workflows")
    def bulk_delete_workflows(
        self,
        workflows: WorkflowsDep,
        make_visible: MakeVisibleDep,
        principal: PrincipalDep,
        data: JSONBody[BulkDeleteWorkflows],
    ) -> BulkDeleteResults:
        results, position = workflows.bulk_delete_workflows(
            principal.actor, principal.project_id, data.workflow_ids
        )
        make_visible(position)
        return BulkDeleteResults([BulkDeleteResult(i, status) for i, status in results])

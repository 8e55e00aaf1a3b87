"""The workflow routes: reads answer from the read models, writes go through the application service."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import HeaderParameter, JSONBody, QueryParameter

from api.audit import AsOf, document_as_of
from api.auth import CursorsDep, PrincipalDep, ServicesDep
from api.errors import READ_ERRORS, WRITE_ERRORS
from api.params import Cursor, Limit, VersionNumber, WorkflowId
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
    content_fields,
)
from domain.errors import InvalidInput, NotFound
from domain.service import Saved
from domain.workflow import parse_version_id, parse_version_number
from projections.documents import WorkflowDocument, render_document
from projections.workflow_summary import PageKey
from projections.workflow_versions import DEFAULT_VERSIONS_LIMIT, MAX_VERSIONS_LIMIT, WorkflowVersions

IfMatch = Annotated[
    str | None,
    HeaderParameter(name="If-Match", description="The ETag from `get`: refuse the write on a mismatch"),
]


def answer(backend: ServicesDep, saved: Saved) -> WorkflowDocument:
    """The workflow as this write left it, once every read model reflects the write."""
    backend.settle(saved.position)
    workflow = saved.workflow
    document = render_document(
        str(workflow.id),
        workflow.content,
        workflow.content_version,
        workflow.created_on,
        workflow.modified_on,
        workflow.deleted_at,
    )
    return msgspec.convert(document, WorkflowDocument)


def expected(body_version: int | None, if_match: str | None) -> int | None:
    """The version a write is conditional on, from the body or an If-Match ETag."""
    if body_version is not None or if_match is None:
        return body_version
    tag = if_match.strip()
    if tag == "*":
        return None
    version = parse_version_number(tag.removeprefix("W/").strip('"'))
    if version is None:
        raise InvalidInput("If-Match", 'must be an ETag from get, such as "3"')
    return version


class WorkflowController(Controller):
    """Every tab of the workflow pages that is about the definition itself."""

    path = "/workflows"
    tags = ["workflows"]

    @get("/list", sync_to_thread=True, responses=READ_ERRORS, summary="List workflows (or the trash)")
    def list_workflows(
        self,
        backend: ServicesDep,
        cursors: CursorsDep,
        principal: PrincipalDep,
        limit: Limit = 50,
        cursor: Cursor = None,
        deleted: Annotated[bool, QueryParameter(description="true: list the trash instead")] = False,
    ) -> WorkflowPage:
        scope = f"workflows:{principal.project_id}:{int(deleted)}"
        after = None if cursor is None else PageKey(*cursors.decode(scope, cursor))
        items, last = backend.summaries.page(principal.project_id, deleted=deleted, after=after, limit=limit)
        next_cursor = None if last is None else cursors.encode(scope, (last.updated_key, last.workflow_id))
        return WorkflowPage(items=items, next_cursor=next_cursor, has_more=last is not None)

    @get("/get", sync_to_thread=True, responses=READ_ERRORS, summary="Get a workflow, now or at a version")
    def get_workflow(
        self,
        backend: ServicesDep,
        principal: PrincipalDep,
        id: WorkflowId,
        version: VersionNumber = None,
        as_of: AsOf = None,
    ) -> Response[WorkflowDocument]:
        """Soft-deleted workflows too; `version=N` or `asOf=TIME` answers the document as it was then."""
        if as_of is not None:
            if version is not None:
                raise InvalidInput("asOf", "give version or asOf, not both")
            then = document_as_of(backend, principal.project_id, id, as_of)
            return Response(then, headers={"ETag": f'"{then.version}"'})
        if version is None:
            document = backend.summaries.get(principal.project_id, id)
        else:
            document = backend.history.document(principal.project_id, id, version)
        if document is None:
            raise NotFound(f"no workflow has id {id!r}" + (f" at version {version}" if version else ""))
        return Response(document, headers={"ETag": f'"{document.version}"'})

    @get(
        "/versions", sync_to_thread=True, responses=READ_ERRORS, summary="List a workflow's content versions"
    )
    def list_versions(
        self,
        backend: ServicesDep,
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
        versions = backend.history.versions(principal.project_id, id, limit=limit, before=before)
        if versions is None:
            raise NotFound(f"no workflow has id {id!r}")
        if versions.has_more:
            versions.next_cursor = cursors.encode(scope, (versions.versions[-1].version, ""))
        return versions

    @post(
        "/create", sync_to_thread=True, responses=WRITE_ERRORS, status_code=201, summary="Create a workflow"
    )
    def create_workflow(
        self, backend: ServicesDep, principal: PrincipalDep, data: JSONBody[CreateWorkflow]
    ) -> WorkflowDocument:
        saved = backend.workflows.create_workflow(principal.actor, principal.project_id, content_fields(data))
        return answer(backend, saved)

    @post(
        "/update",
        sync_to_thread=True,
        responses=WRITE_ERRORS,
        status_code=200,
        summary="Update any workflow fields",
    )
    def update_workflow(
        self,
        backend: ServicesDep,
        principal: PrincipalDep,
        data: JSONBody[UpdateWorkflow],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        saved = backend.workflows.update_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            content_fields(data),
            expected(data.expected_version, if_match),
        )
        return answer(backend, saved)

    @post(
        "/rename", sync_to_thread=True, responses=WRITE_ERRORS, status_code=200, summary="Rename a workflow"
    )
    def rename_workflow(
        self,
        backend: ServicesDep,
        principal: PrincipalDep,
        data: JSONBody[RenameWorkflow],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        saved = backend.workflows.rename_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            data.name,
            expected(data.expected_version, if_match),
        )
        return answer(backend, saved)

    @post(
        "/versions/revert",
        sync_to_thread=True,
        responses=WRITE_ERRORS,
        status_code=200,
        summary="Revert to a version",
    )
    def revert_workflow(
        self,
        backend: ServicesDep,
        principal: PrincipalDep,
        data: JSONBody[RevertWorkflow],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        named = parse_version_id(data.version_id)
        if named is None or named[0] != data.workflow_id:
            raise NotFound(f"workflow {data.workflow_id!r} has no version {data.version_id!r}")
        saved = backend.workflows.revert_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            named[1],
            expected(data.expected_version, if_match),
        )
        return answer(backend, saved)

    @post(
        "/duplicate",
        sync_to_thread=True,
        responses=WRITE_ERRORS,
        status_code=201,
        summary="Duplicate a workflow",
    )
    def duplicate_workflow(
        self,
        backend: ServicesDep,
        principal: PrincipalDep,
        data: JSONBody[DuplicateWorkflow],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        saved = backend.workflows.duplicate_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            data.name,
            expected(data.expected_version, if_match),
        )
        return answer(backend, saved)

    @post(
        "/delete",
        sync_to_thread=True,
        responses=WRITE_ERRORS,
        status_code=200,
        summary="Move a workflow to the trash",
    )
    def delete_workflow(
        self,
        backend: ServicesDep,
        principal: PrincipalDep,
        data: JSONBody[WorkflowCommand],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        saved = backend.workflows.delete_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            expected(data.expected_version, if_match),
        )
        return answer(backend, saved)

    @post(
        "/restore",
        sync_to_thread=True,
        responses=WRITE_ERRORS,
        status_code=200,
        summary="Restore from the trash",
    )
    def restore_workflow(
        self,
        backend: ServicesDep,
        principal: PrincipalDep,
        data: JSONBody[WorkflowCommand],
        if_match: IfMatch = None,
    ) -> WorkflowDocument:
        saved = backend.workflows.restore_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            expected(data.expected_version, if_match),
        )
        return answer(backend, saved)

    @post(
        "/permanent-delete",
        sync_to_thread=True,
        responses=WRITE_ERRORS,
        status_code=200,
        summary="Erase a workflow",
    )
    def permanently_delete_workflow(
        self,
        backend: ServicesDep,
        principal: PrincipalDep,
        data: JSONBody[WorkflowCommand],
        if_match: IfMatch = None,
    ) -> PermanentlyDeleted:
        saved = backend.workflows.permanently_delete_workflow(
            principal.actor,
            principal.project_id,
            data.workflow_id,
            expected(data.expected_version, if_match),
        )
        backend.settle(saved.position)
        return PermanentlyDeleted(workflow_id=data.workflow_id)

    @post(
        "/bulk-delete",
        sync_to_thread=True,
        responses=WRITE_ERRORS,
        status_code=200,
        summary="Trash many workflows",
    )
    def bulk_delete_workflows(
        self, backend: ServicesDep, principal: PrincipalDep, data: JSONBody[BulkDeleteWorkflows]
    ) -> BulkDeleteResults:
        results, position = backend.workflows.bulk_delete_workflows(
            principal.actor, principal.project_id, data.workflow_ids
        )
        backend.settle(position)
        return BulkDeleteResults([BulkDeleteResult(i, status) for i, status in results])

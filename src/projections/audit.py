"""The audit read model: every workflow and run event as a readable item, kept without content after erasure.

Each item is one stored event under its stable public type name, at its position in the store.
`version` is the workflow's content version after the event (delete, restore and erase keep it),
or, for run items, the run's own event version; `requestId` is that of the request that stored
the event (None for the CLI and older events). A small state table holds each workflow's current
content, so an update, rename or revert can say what each changed field was before and after.
A permanent delete replaces the `data` of every item of the workflow and of its runs with
`{"erased": true}` and drops the workflow's content from the state table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.utils import get_topic

from domain.run import Run
from domain.workflow import Actor, Workflow
from domain.workflow_content import ContentData as Content
from projections.audit_state import changes_between, read_state
from projections.documents import encode, epoch_ms, iso_ms
from projections.read_model import WORKFLOW_EVENTS, ReadModel, topics_of
from projections.reading import Tombstone, position_of
from store.database import Tx

PublicType = Literal[
    "workflow.created",
    "workflow.duplicated",
    "workflow.updated",
    "workflow.renamed",
    "workflow.reverted",
    "workflow.deleted",
    "workflow.restored",
    "workflow.erased",
    "run.started",
    "run.reported",
    "run.cancelled",
]
"""The stable public event type names; a stored event's class path is not part of the contract."""


ERASED_DATA = encode({"erased": True}).decode()

PUBLIC_TYPE_OF_TOPIC: dict[str, PublicType] = {
    get_topic(Workflow.Created): "workflow.created",
    get_topic(Workflow.Duplicated): "workflow.duplicated",
    get_topic(Workflow.Updated): "workflow.updated",
    get_topic(Workflow.Renamed): "workflow.renamed",
    get_topic(Workflow.Reverted): "workflow.reverted",
    get_topic(Workflow.Deleted): "workflow.deleted",
    get_topic(Workflow.Restored): "workflow.restored",
    get_topic(Run.Started): "run.started",
    get_topic(Run.Reported): "run.reported",
    get_topic(Run.Cancelled): "run.cancelled",
}
"""The public type of each event kind that can be erased (a permanent delete itself never is)."""

CONTENT_CHANGES: frozenset[PublicType] = frozenset(
    {"workflow.updated", "workflow.renamed", "workflow.reverted"}
)


class AuditProjection(ReadModel):
    """Keeps `audit_event` one row per workflow and run event, and `audit_workflow` each one's content."""

    name = "audit"
    tables = ("audit_event", "audit_workflow", "audit_run")
    topics = topics_of(*WORKFLOW_EVENTS, Run.Started, Run.Reported, Run.Cancelled)
    ddl = (
        "CREATE TABLE IF NOT EXISTS audit_event ("
        " position BIGINT PRIMARY KEY, project_id TEXT NOT NULL, workflow_id TEXT NOT NULL,"
        " run_id TEXT, type TEXT NOT NULL, version INTEGER NOT NULL, occurred_at TEXT NOT NULL,"
        " occurred_ms BIGINT NOT NULL, actor_key_id TEXT NOT NULL, actor_key_name TEXT NOT NULL,"
        " request_id TEXT, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS audit_event_project ON audit_event (project_id, position)",
        "CREATE INDEX IF NOT EXISTS audit_event_workflow ON audit_event (workflow_id, position)",
        "CREATE INDEX IF NOT EXISTS audit_event_history ON audit_event (workflow_id, position)"
        " WHERE run_id IS NULL",
        # content is NULL once the workflow is erased; the row stays so later items know it was
        "CREATE TABLE IF NOT EXISTS audit_workflow ("
        " workflow_id TEXT PRIMARY KEY, project_id TEXT NOT NULL, version INTEGER NOT NULL, content TEXT)",
        "CREATE TABLE IF NOT EXISTS audit_run ("
        " run_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, project_id TEXT NOT NULL)",
    )

    @singledispatchmethod
    def apply(self, event: object, tx: Tx) -> None:
        """Events without a rule here change nothing."""

    @apply.register
    def _created(self, event: Workflow.Created, tx: Tx) -> None:
        workflow_id = str(event.originator_id)
        content = event.new_content().data()
        tx.execute(
            "INSERT INTO audit_workflow (workflow_id, project_id, version, content) VALUES (?, ?, 1, ?)"
            " ON CONFLICT (workflow_id) DO NOTHING",
            (workflow_id, event.project_id, encode(content).decode()),
        )
        if isinstance(event, Workflow.Duplicated):
            data = {**content, "sourceWorkflowId": event.duplicated_from}
            self._record(tx, event, "workflow.duplicated", event.project_id, workflow_id, 1, data)
        else:
            self._record(tx, event, "workflow.created", event.project_id, workflow_id, 1, content)

    @apply.register
    def _updated(self, event: Workflow.Updated, tx: Tx) -> None:
        self._change_content(tx, event, "workflow.updated", event.changes, {})

    @apply.register
    def _renamed(self, event: Workflow.Renamed, tx: Tx) -> None:
        self._change_content(tx, event, "workflow.renamed", {"name": event.name}, {})

    @apply.register
    def _reverted(self, event: Workflow.Reverted, tx: Tx) -> None:
        extra = {"revertedFromVersion": event.reverted_from_version}
        self._change_content(tx, event, "workflow.reverted", event.changes, extra)

    @apply.register
    def _deleted(self, event: Workflow.Deleted, tx: Tx) -> None:
        self._lifecycle(tx, event, "workflow.deleted")

    @apply.register
    def _restored(self, event: Workflow.Restored, tx: Tx) -> None:
        self._lifecycle(tx, event, "workflow.restored")

    @apply.register
    def _erased(self, event: Workflow.PermanentlyDeleted, tx: Tx) -> None:
        workflow_id = str(event.originator_id)
        state = read_state(tx, workflow_id)
        if state is None:
            return  # its creation was never seen here, so neither is its project
        tx.execute("UPDATE audit_event SET data = ? WHERE workflow_id = ?", (ERASED_DATA, workflow_id))
        tx.execute("UPDATE audit_workflow SET content = NULL WHERE workflow_id = ?", (workflow_id,))
        self._record(
            tx, event, "workflow.erased", state.project_id, workflow_id, state.version, {"erased": True}
        )

    @apply.register
    def _tombstone(self, event: Tombstone, tx: Tx) -> None:
        """An erased event keeps its item, without content; the workflow's content is unknown."""
        type_ = PUBLIC_TYPE_OF_TOPIC.get(event.topic)
        if type_ is None:
            return
        if type_.startswith("run."):
            self._run_tombstone(tx, event, type_)
            return
        workflow_id = str(event.originator_id)
        if type_ in ("workflow.created", "workflow.duplicated") and event.project_id is not None:
            tx.execute(
                "INSERT INTO audit_workflow (workflow_id, project_id, version, content)"
                " VALUES (?, ?, 1, NULL) ON CONFLICT (workflow_id) DO NOTHING",
                (workflow_id, event.project_id),
            )
        state = read_state(tx, workflow_id)
        if state is None:
            return
        version = state.version
        if type_ in CONTENT_CHANGES:
            version += 1
            tx.execute("UPDATE audit_workflow SET version = ? WHERE workflow_id = ?", (version, workflow_id))
        self._record(tx, event, type_, state.project_id, workflow_id, version, {"erased": True})

    def _run_tombstone(self, tx: Tx, event: Tombstone, type_: PublicType) -> None:
        run_id = str(event.originator_id)
        if type_ == "run.started" and event.workflow_id is not None and event.project_id is not None:
            tx.execute(
                "INSERT INTO audit_run (run_id, workflow_id, project_id) VALUES (?, ?, ?)"
                " ON CONFLICT (run_id) DO NOTHING",
                (run_id, event.workflow_id, event.project_id),
            )
        self._run_item(tx, event, type_, run_id, {"erased": True})

    @apply.register
    def _run_started(self, event: Run.Started, tx: Tx) -> None:
        run_id = str(event.originator_id)
        tx.execute(
            "INSERT INTO audit_run (run_id, workflow_id, project_id) VALUES (?, ?, ?)"
            " ON CONFLICT (run_id) DO NOTHING",
            (run_id, event.workflow_id, event.project_id),
        )
        data = {
            "workflowVersion": event.workflow_version,
            "runNumber": event.run_number,
            "displayId": f"RUN-{event.run_number}",
            "prompt": event.prompt,
            "githubRepoUrl": event.github_repo_url,
            "branchName": event.branch_name,
            "config": event.config,
            "referenceImageIds": list(event.reference_image_ids),
        }
        self._run_item(tx, event, "run.started", run_id, data)

    @apply.register
    def _run_reported(self, event: Run.Reported, tx: Tx) -> None:
        data = {
            "status": event.status,
            "branchName": event.branch_name,
            "prUrl": event.pr_url,
            "costBreakdown": list(event.cost_lines),
            "error": event.error,
            "links": event.links,
        }
        self._run_item(tx, event, "run.reported", str(event.originator_id), data)

    @apply.register
    def _run_cancelled(self, event: Run.Cancelled, tx: Tx) -> None:
        self._run_item(tx, event, "run.cancelled", str(event.originator_id), {"status": "cancelled"})

    def _change_content(
        self, tx: Tx, event: Workflow.Event, type_: PublicType, changes: Content, extra: dict[str, Any]
    ) -> None:
        workflow_id = str(event.originator_id)
        state = read_state(tx, workflow_id)
        if state is None or state.content is None:
            return
        version = state.version + 1
        tx.execute(
            "UPDATE audit_workflow SET version = ?, content = ? WHERE workflow_id = ?",
            (version, encode({**state.content, **changes}).decode(), workflow_id),
        )
        data = {**changes_between(state.content, changes), **extra}
        self._record(tx, event, type_, state.project_id, workflow_id, version, data)

    def _lifecycle(self, tx: Tx, event: Workflow.Deleted | Workflow.Restored, type_: PublicType) -> None:
        workflow_id = str(event.originator_id)
        state = read_state(tx, workflow_id)
        if state is not None:
            self._record(tx, event, type_, state.project_id, workflow_id, state.version, {})

    def _run_item(self, tx: Tx, event: Any, type_: PublicType, run_id: str, data: dict[str, Any]) -> None:
        row = tx.execute(
            "SELECT workflow_id, project_id FROM audit_run WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return
        state = read_state(tx, row["workflow_id"])
        if state is None or state.content is None:
            data = {"erased": True}  # a run recorded after its workflow was erased keeps no content
        version = event.originator_version
        self._record(tx, event, type_, row["project_id"], row["workflow_id"], version, data, run_id)

    def _record(
        self,
        tx: Tx,
        event: Any,
        type_: PublicType,
        project_id: str,
        workflow_id: str,
        version: int,
        data: dict[str, Any],
        run_id: str | None = None,
    ) -> None:
        position = position_of(event)
        actor: Actor = event.actor
        moment: datetime = event.timestamp
        tx.execute(
            "INSERT INTO audit_event (position, project_id, workflow_id, run_id, type, version,"
            " occurred_at, occurred_ms, actor_key_id, actor_key_name, request_id, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING",
            (
                position,
                project_id,
                workflow_id,
                run_id,
                type_,
                version,
                iso_ms(moment),
                epoch_ms(moment),
                actor["keyId"],
                actor["keyName"],
                getattr(event, "request_id", None),  # None: stored by the CLI, or before request ids
                encode(data).decode(),
            ),
        )

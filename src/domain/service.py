"""The application service: one method per workflow command; plain values in, positions out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from time import monotonic, sleep
from typing import Any, Literal, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording

from domain.contention import Turns, pause_before_retry
from domain.errors import Conflict, ErasedError, NotFound, VersionConflict
from domain.snapshots import (
    SNAPSHOT_INTERVAL_VARIABLE,
    SnapshotRepository,
    Snapshots,
    snapshot_interval,
)
from domain.workflow import Actor, Workflow, parse_workflow_id
from domain.workflow_content import WorkflowChanges, WorkflowContent

SAVE_DEADLINE_SECONDS = 10.0
"""How long a write may wait for its turn among concurrent writers of the same aggregate (then 503)."""
WRITERS = Turns()
"""This process's writers, queued per aggregate id."""

TAggregate = TypeVar("TAggregate", bound=Aggregate)

BulkStatus = Literal["deleted", "not_found", "already_deleted"]


@dataclass(frozen=True)
class Saved:
    """A workflow after a command, and the position of its last stored event (None: nothing stored)."""

    workflow: Workflow
    position: int | None


class WorkflowService(Application[UUID]):
    """Loads, decides and saves workflows; a clash with a concurrent writer is retried or refused."""

    name = "workflows"
    is_snapshotting_enabled = True
    """The snapshot table always exists; WFS_SNAPSHOT_INTERVAL=0 only stops taking and reading snapshots."""

    def __init__(self, env: dict[str, str]) -> None:
        self.snapshotting: Snapshots | None = None
        super().__init__(env)

    def construct_repository(self) -> Repository[UUID]:
        interval = snapshot_interval(self.env.get(SNAPSHOT_INTERVAL_VARIABLE))
        if interval and self.snapshots is not None:
            self.snapshotting = Snapshots(self.snapshots, interval)
        return SnapshotRepository(self.events, self.snapshotting)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Store the aggregates' new events, then snapshot a workflow that reached the interval."""
        recordings = super().save(*objs, **kwargs)
        repository = self.repository
        if isinstance(repository, SnapshotRepository):
            repository.remember(objs)
        if self.snapshotting is not None:
            saved_versions: dict[UUID, list[int]] = {}
            for recording in recordings:
                event = recording.domain_event
                saved_versions.setdefault(event.originator_id, []).append(event.originator_version)
            self.snapshotting.after_save(objs, saved_versions)
        return recordings

    def create_workflow(self, actor: Actor, project_id: str, content: WorkflowContent) -> Saved:
        workflow = Workflow.create(project_id, actor, content)
        return Saved(workflow, position_of(self.save(workflow)))

    def update_workflow(
        self,
        actor: Actor,
        project_id: str,
        workflow_id: str,
        changes: WorkflowChanges,
        expected_version: int | None = None,
    ) -> Saved:
        return self._change(project_id, workflow_id, expected_version, lambda w: w.update(actor, changes))

    def rename_workflow(
        self,
        actor: Actor,
        project_id: str,
        workflow_id: str,
        name: str,
        expected_version: int | None = None,
    ) -> Saved:
        return self._change(project_id, workflow_id, expected_version, lambda w: w.rename(actor, name))

    def revert_workflow(
        self,
        actor: Actor,
        project_id: str,
        workflow_id: str,
        version: int,
        expected_version: int | None = None,
    ) -> Saved:
        content_then = self.content_at(project_id, workflow_id, version)
        return self._change(
            project_id,
            workflow_id,
            expected_version,
            lambda w: w.revert(actor, version, content_then),
        )

    def duplicate_workflow(
        self,
        actor: Actor,
        project_id: str,
        workflow_id: str,
        name: str | None,
        expected_version: int | None = None,
    ) -> Saved:
        source = self.get_workflow(project_id, workflow_id)
        _check_expected(source, expected_version)
        copy = source.duplicate(actor, name)
        return Saved(copy, position_of(self.save(copy)))

    def delete_workflow(
        self, actor: Actor, project_id: str, workflow_id: str, expected_version: int | None = None
    ) -> Saved:
        return self._change(project_id, workflow_id, expected_version, lambda w: w.delete(actor))

    def restore_workflow(
        self, actor: Actor, project_id: str, workflow_id: str, expected_version: int | None = None
    ) -> Saved:
        return self._change(project_id, workflow_id, expected_version, lambda w: w.restore(actor))

    def permanently_delete_workflow(
        self, actor: Actor, project_id: str, workflow_id: str, expected_version: int | None = None
    ) -> Saved:
        return self._change(project_id, workflow_id, expected_version, lambda w: w.erase(actor))

    def bulk_delete_workflows(
        self, actor: Actor, project_id: str, workflow_ids: Iterable[str]
    ) -> tuple[list[tuple[str, BulkStatus]], int | None]:
        """Soft-delete each workflow on its own; one's failure does not stop the others.

        Every id is resolved before anything is deleted, so an id that fails to load stops the
        request before it has changed anything, never halfway through.
        """

        def exists(workflow_id: str) -> bool:
            try:
                self.get_workflow(project_id, workflow_id)
            except NotFound:
                return False
            return True

        ids = list(workflow_ids)
        found = {workflow_id for workflow_id in ids if exists(workflow_id)}
        results: list[tuple[str, BulkStatus]] = []
        position: int | None = None
        for workflow_id in ids:
            if workflow_id not in found:
                results.append((workflow_id, "not_found"))
                continue
            try:
                saved = self.delete_workflow(actor, project_id, workflow_id)
            except NotFound:
                results.append((workflow_id, "not_found"))
            except Conflict:
                results.append((workflow_id, "already_deleted"))
            else:
                results.append((workflow_id, "deleted"))
                position = saved.position
        return results, position

    def get_workflow(self, project_id: str, workflow_id: str) -> Workflow:
        """The workflow as it is now, if the caller's project has it."""
        uuid = parse_workflow_id(workflow_id)
        if uuid is None:
            raise NotFound(f"no workflow has id {workflow_id!r}")
        try:
            workflow: object = self.repository.get(uuid)
        except (AggregateNotFoundError, ErasedError):
            raise NotFound(f"no workflow has id {workflow_id!r}") from None
        # Runs and run-number claims share the event store: their ids load other aggregate types.
        if not isinstance(workflow, Workflow) or workflow.project_id != project_id or workflow.erased:
            raise NotFound(f"no workflow has id {workflow_id!r}")
        return workflow

    def content_at(self, project_id: str, workflow_id: str, version: int) -> WorkflowContent:
        """The workflow's content as it was at content version `version`.

        Replayed from the latest snapshot that cannot be past it: content versions never outrun
        event versions, so a snapshot at event version `version` or before is at or before it.
        Events that change no content (delete, restore) are the only ones between that and the end.
        """
        workflow = self.get_workflow(project_id, workflow_id)
        if not 1 <= version <= workflow.content_version:
            raise NotFound(f"workflow {workflow_id!r} has no version {version}")
        snapshot = None if self.snapshotting is None else self.snapshotting.latest(workflow.id, version)
        replayed: Any = None if snapshot is None else snapshot.mutate(None)
        if replayed is not None and replayed.content_version == version:
            return cast(WorkflowContent, replayed.content)
        last_possible = version + workflow.version - workflow.content_version
        event: Any
        for event in self.events.get(
            workflow.id, gt=None if replayed is None else replayed.version, lte=last_possible
        ):
            replayed = event.mutate(replayed)
            if replayed.content_version == version:
                return cast(WorkflowContent, replayed.content)
        raise NotFound(f"workflow {workflow_id!r} has no version {version}")  # pragma: no cover

    def _change(
        self,
        project_id: str,
        workflow_id: str,
        expected_version: int | None,
        decide: Callable[[Workflow], None],
    ) -> Saved:
        def load() -> Workflow:
            workflow = self.get_workflow(project_id, workflow_id)
            _check_expected(workflow, expected_version)
            return workflow

        workflow, position = decide_and_save(
            self,
            load,
            decide,
            "the workflow is being changed by others; try again",
            key=parse_workflow_id(workflow_id),
        )
        return Saved(workflow, position)


def position_of(recordings: Sequence[Recording[UUID]]) -> int | None:
    """The position of the last event a save stored (None: it stored nothing)."""
    return recordings[-1].notification.id if recordings else None


def decide_and_save(
    application: Application[UUID],
    load: Callable[[], TAggregate],
    decide: Callable[[TAggregate], None],
    busy: str,
    key: UUID | None = None,
) -> tuple[TAggregate, int | None]:
    """Load, decide, save, one writer of an aggregate at a time in this process.

    `key` is the aggregate's id when the caller knows it (else it is learnt by loading first). A
    race lost to another process is decided again on fresh state after a jittered pause; a write
    that cannot get its turn within SAVE_DEADLINE_SECONDS is Busy (503), never a conflict.
    """
    deadline = monotonic() + SAVE_DEADLINE_SECONDS
    first = load() if key is None else None
    with WRITERS.turn(key if first is None else first.id, deadline, busy) as waited:
        aggregate = load() if first is None or waited else first
        races_lost = 0
        while True:
            decide(aggregate)
            if not aggregate.pending_events:
                return aggregate, None
            try:
                return aggregate, position_of(application.save(aggregate))
            except IntegrityError:
                sleep(pause_before_retry(races_lost, deadline, busy))
                races_lost += 1
                aggregate = load()


def _check_expected(workflow: Workflow, expected_version: int | None) -> None:
    if expected_version is not None and workflow.content_version != expected_version:
        raise VersionConflict(expected_version, workflow.content_version)

"""The run commands, over the same application (one event store) as the workflows they run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from domain.errors import Conflict, ErasedError, NotFound
from domain.run import Run, RunNumber, run_number_claim_id
from domain.run_values import RunReport, RunRequest
from domain.service import WorkflowService, decide_and_save, position_of
from domain.workflow import Actor, Workflow, parse_workflow_id

START_ATTEMPTS = 500
"""How many run numbers a start may lose to concurrent starts before it gives up with 409."""
ERASED_TOPIC = get_topic(Workflow.PermanentlyDeleted)


@dataclass(frozen=True)
class SavedRun:
    """A run after a command, and the position of its last stored event (None: nothing stored)."""

    run: Run
    position: int | None


class RunService:
    """Starts, reports and cancels runs; a run number is claimed in the same transaction as its run.

    Run numbers of a project are the prefix 1..N of the positive integers: number n is only ever
    claimed after n-1 was seen claimed, and a claim exists only together with its run (one insert),
    so a start that loses a race gets IntegrityError, nothing is stored, and it tries the next number.
    """

    def __init__(self, app: WorkflowService) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._highest_seen: dict[str, int] = {}

    def start_run(self, actor: Actor, project_id: str, workflow_id: str, request: RunRequest) -> SavedRun:
        workflow = self.app.get_workflow(project_id, workflow_id)
        if workflow.is_deleted:
            raise Conflict("the workflow is deleted; restore it before starting a run")
        of = (str(workflow.id), workflow.content_version)
        number = self._first_free(project_id, self._highest_seen.get(project_id, 0) + 1)
        for _ in range(START_ATTEMPTS):
            run = Run.start(actor, project_id, of, number, request)
            try:
                recordings = self.app.save(RunNumber.claim(project_id, number, run.id), run)
            except ErasedError:
                # The workflow was erased since it was read: its key is gone, nothing was stored.
                raise NotFound(f"no workflow has id {workflow_id!r}") from None
            except IntegrityError:
                self._saw(project_id, number)
                number = self._first_free(project_id, number + 1)
                continue
            self._saw(project_id, number)
            return SavedRun(run, position_of(recordings))
        raise Conflict("too many runs are being started at once; try again")

    def report_run(self, actor: Actor, project_id: str, run_id: str, report: RunReport) -> SavedRun:
        return self._change(project_id, run_id, lambda run: run.report(actor, report))

    def cancel_run(self, actor: Actor, project_id: str, run_id: str) -> SavedRun:
        return self._change(project_id, run_id, lambda run: run.cancel(actor))

    def get_run(self, project_id: str, run_id: str) -> Run:
        """The run as it is now, if the caller's project has it and its workflow was not erased."""
        uuid = parse_workflow_id(run_id)
        missing = NotFound(f"no run has id {run_id!r}")
        if uuid is None:
            raise missing
        try:
            run: object = self.app.repository.get(uuid)
        except (AggregateNotFoundError, ErasedError):
            raise missing from None
        if not isinstance(run, Run) or run.project_id != project_id or self._erased(run.workflow_id):
            raise missing
        return run

    def _change(self, project_id: str, run_id: str, decide: Callable[[Run], None]) -> SavedRun:
        try:
            run, position = decide_and_save(
                self.app,
                lambda: self.get_run(project_id, run_id),
                decide,
                "the run is being changed by others; try again",
            )
        except ErasedError:
            # Its workflow was erased since the run was read: nothing was stored.
            raise NotFound(f"no run has id {run_id!r}") from None
        return SavedRun(run, position)

    def _erased(self, workflow_id: str) -> bool:
        """Whether the workflow's last event is its permanent delete (one indexed read, no replay)."""
        uuid = parse_workflow_id(workflow_id)
        if uuid is None:
            return True
        last = self.app.recorder.select_events(uuid, desc=True, limit=1)
        return not last or last[0].topic == ERASED_TOPIC

    def _claimed(self, project_id: str, number: int) -> bool:
        return bool(self.app.recorder.select_events(run_number_claim_id(project_id, number), limit=1))

    def _first_free(self, project_id: str, low: int) -> int:
        """The smallest unclaimed number >= `low`, given that `low - 1` is claimed (or `low` is 1).

        Claimed numbers are a prefix, so a galloping then binary search needs O(log n) reads.
        """
        if not self._claimed(project_id, low):
            return low
        taken, step = low, 1
        while self._claimed(project_id, low + step):
            taken = low + step
            step *= 2
        free = low + step
        while free - taken > 1:
            middle = (taken + free) // 2
            if self._claimed(project_id, middle):
                taken = middle
            else:
                free = middle
        self._saw(project_id, free - 1)
        return free

    def _saw(self, project_id: str, number: int) -> None:
        """Remember a number known to be claimed, so the next start in this process probes from there."""
        with self._lock:
            if number > self._highest_seen.get(project_id, 0):
                self._highest_seen[project_id] = number

"""The runs read model's projection: one row per run, holding the run's document as clients read it.

A workflow's permanent delete removes its runs' rows, so `runs/get` and `workflows/runs` answer 404
for them like every other route; their events stay in the store, sealed with the workflow's data key,
so they are unreadable there too once the key is destroyed. A run stored after the erase (started
while it was under way) is never added.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.utils import get_topic

from domain.run import FINISHED, Run
from domain.workflow import Workflow
from projections.documents import decode_dict, encode, iso_ms, micros
from projections.erasure import ERASED_WORKFLOWS_DDL, is_erased, mark_erased
from projections.read_model import ReadModel
from store.database import Tx


def epoch_ms(stamp: str) -> int:
    """Milliseconds since the epoch of a wire timestamp, so durations match the timestamps shown."""
    return micros(datetime.fromisoformat(stamp)) // 1000


def total_cost(lines: list[dict[str, Any]]) -> float:
    """The sum of the lines' costs, without float drift from summing many small amounts."""
    return round(math.fsum(line["costUsd"] for line in lines), 10)


def duration_ms(document: dict[str, Any]) -> int | None:
    """completedAt - startedAt, or - createdAt for a run that never ran; None until finished."""
    if document["completedAt"] is None:
        return None
    begin = document["startedAt"] or document["createdAt"]
    return epoch_ms(document["completedAt"]) - epoch_ms(begin)


class RunsProjection(ReadModel):
    """Keeps `runs` equal to the current state of every run whose workflow was not erased."""

    name = "runs"
    tables = ("runs",)
    topics = tuple(
        get_topic(cls) for cls in (Run.Started, Run.Reported, Run.Cancelled, Workflow.PermanentlyDeleted)
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS runs ("
        " run_id TEXT PRIMARY KEY, project_id TEXT NOT NULL, workflow_id TEXT NOT NULL,"
        " run_number BIGINT NOT NULL, created_key BIGINT NOT NULL, document TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS runs_page ON runs (workflow_id, created_key, run_id)",
        ERASED_WORKFLOWS_DDL,
    )

    @singledispatchmethod
    def apply(self, event: object, tx: Tx) -> None:
        """Events without a rule here change nothing."""

    @apply.register
    def _started(self, event: Run.Started, tx: Tx) -> None:
        if is_erased(tx, event.workflow_id):
            return  # started while its workflow was being erased: erased with it
        run_id = str(event.originator_id)
        document = {
            "id": run_id,
            "workflowId": event.workflow_id,
            "workflowVersion": event.workflow_version,
            "runNumber": event.run_number,
            "displayId": f"RUN-{event.run_number}",
            "status": "queued",
            "prompt": event.prompt,
            "githubRepoUrl": event.github_repo_url,
            "branchName": event.branch_name,
            "prUrl": None,
            "config": event.config,
            "referenceImageIds": list(event.reference_image_ids),
            "createdAt": iso_ms(event.timestamp),
            "startedAt": None,
            "completedAt": None,
            "durationMs": None,
            "costUsd": 0,
            "costBreakdown": [],
            "error": None,
        }
        tx.execute(
            "INSERT INTO runs (run_id, project_id, workflow_id, run_number, created_key, document)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING",
            (
                run_id,
                event.project_id,
                event.workflow_id,
                event.run_number,
                micros(event.timestamp),
                encode(document).decode(),
            ),
        )

    @apply.register
    def _reported(self, event: Run.Reported, tx: Tx) -> None:
        document = self._document(tx, str(event.originator_id))
        if document is None:
            return
        if event.status is not None:
            self._move(document, event.status, event.timestamp)
        for key, value in (
            ("branchName", event.branch_name),
            ("prUrl", event.pr_url),
            ("error", event.error),
        ):
            if value is not None:
                document[key] = value
        document["costBreakdown"] = [*document["costBreakdown"], *event.cost_lines]
        document["costUsd"] = total_cost(document["costBreakdown"])
        self._write(tx, document)

    @apply.register
    def _cancelled(self, event: Run.Cancelled, tx: Tx) -> None:
        document = self._document(tx, str(event.originator_id))
        if document is None:
            return
        self._move(document, "cancelled", event.timestamp)
        self._write(tx, document)

    @apply.register
    def _erased(self, event: Workflow.PermanentlyDeleted, tx: Tx) -> None:
        mark_erased(tx, str(event.originator_id))
        tx.execute("DELETE FROM runs WHERE workflow_id = ?", (str(event.originator_id),))

    @staticmethod
    def _move(document: dict[str, Any], status: str, at: datetime) -> None:
        document["status"] = status
        if status == "running" and document["startedAt"] is None:
            document["startedAt"] = iso_ms(at)
        if status in FINISHED:
            document["completedAt"] = iso_ms(at)
            document["durationMs"] = duration_ms(document)

    @staticmethod
    def _document(tx: Tx, run_id: str) -> dict[str, Any] | None:
        row = tx.execute("SELECT document FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else decode_dict(row["document"])

    @staticmethod
    def _write(tx: Tx, document: dict[str, Any]) -> None:
        tx.execute(
            "UPDATE runs SET document = ? WHERE run_id = ?", (encode(document).decode(), document["id"])
        )

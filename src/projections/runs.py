"""The runs read model: one row per run with its answer as clients read it, paged newest first.

A workflow's permanent delete removes its runs' rows, so `runs/get` and `workflows/runs` answer 404
for them like every other route; their events stay in the store, sealed with the workflow's data key,
so they are unreadable there too once the key is destroyed. A run stored after the erase (started
while it was under way) is never added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.utils import get_topic
from msgspec import Struct

from domain.run import FINISHED, Run
from domain.workflow import Workflow
from projections.documents import SandboxConfig, decode_dict, encode, iso_ms, micros
from projections.erasure import ERASED_WORKFLOWS_DDL, is_erased, mark_erased
from projections.read_model import ReadModel
from store.database import Database, Tx


class CostBreakdownLine(Struct, rename="camel"):
    """What one model on one CLI cost a run, as reported."""

    model: str
    cli_id: str
    cost_usd: float
    input_tokens: int | None
    output_tokens: int | None


class RunDocument(Struct, rename="camel"):
    """One run, as `runs/get`, `workflows/runs` and every run write answer it."""

    id: str
    workflow_id: str
    workflow_version: int
    run_number: int
    display_id: str
    status: str
    prompt: str
    github_repo_url: str | None
    branch_name: str | None
    pr_url: str | None
    config: SandboxConfig | None
    reference_image_ids: list[str]
    created_at: str
    started_at: str | None
    completed_at: str | None
    duration_ms: int | None
    cost_usd: float
    cost_breakdown: list[CostBreakdownLine]
    error: str | None


@dataclass(frozen=True)
class RunPageKey:
    """Where a page of a workflow's runs ends: the last row's sort key."""

    created_key: int
    run_id: str


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


decode_run = msgspec.json.Decoder(RunDocument).decode


class Runs:
    """Queries on the runs read model, always within one project."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def get(self, project_id: str, run_id: str) -> RunDocument | None:
        with self.database.transaction(commit=False) as tx:
            row = tx.execute(
                "SELECT document FROM runs WHERE run_id = ? AND project_id = ?", (run_id, project_id)
            ).fetchone()
        return None if row is None else decode_run(row["document"])

    def page(
        self, project_id: str, workflow_id: str, *, after: RunPageKey | None, limit: int
    ) -> tuple[list[RunDocument], RunPageKey | None]:
        """Up to `limit` runs of a workflow, newest first, and the key to continue from (if more)."""
        sql = "SELECT run_id, created_key, document FROM runs WHERE workflow_id = ? AND project_id = ?"
        params: list[Any] = [workflow_id, project_id]
        if after is not None:
            sql += " AND (created_key, run_id) < (?, ?)"
            params += [after.created_key, after.run_id]
        sql += " ORDER BY created_key DESC, run_id DESC LIMIT ?"
        params.append(limit + 1)
        with self.database.transaction(commit=False) as tx:
            rows = tx.execute(sql, params).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        items = [decode_run(row["document"]) for row in rows]
        last = RunPageKey(rows[-1]["created_key"], rows[-1]["run_id"]) if more else None
        return items, last

    def rows(self) -> list[tuple[str, str]]:
        """Every row, for comparing the view with a fresh rebuild."""
        with self.database.transaction(commit=False) as tx:
            found = tx.execute("SELECT run_id, document FROM runs ORDER BY run_id").fetchall()
        return [(row["run_id"], row["document"]) for row in found]

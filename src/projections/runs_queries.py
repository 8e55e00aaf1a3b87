"""Queries on the runs read model: one run's document, and a workflow's runs page by page, newest first."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from domain.camel import CamelStruct
from domain.formats import Timestamp, Url
from domain.run_values import RunStatus
from domain.workflow_content import SandboxConfig
from projections.keyset import Keyset
from store.database import Database

NEWEST_CREATED_FIRST = Keyset(("created_key", "run_id"), descending=True)


class CostBreakdownLine(CamelStruct):
    """What one model on one CLI cost a run, as reported."""

    model: str
    cli_id: str
    cost_usd: float
    input_tokens: int | None
    output_tokens: int | None


class RunDocument(CamelStruct):
    """One run, as `runs/get`, `workflows/runs` and every run write answer it."""

    id: str
    workflow_id: str
    workflow_version: int
    run_number: int
    display_id: str
    status: RunStatus
    prompt: str
    github_repo_url: Url | None
    branch_name: str | None
    pr_url: Url | None
    config: SandboxConfig | None
    reference_image_ids: list[str]
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None
    duration_ms: int | None
    cost_usd: float
    cost_breakdown: list[CostBreakdownLine]
    error: str | None


@dataclass(frozen=True)
class RunPageKey:
    """Where a page of a workflow's runs ends: the last row's sort key."""

    created_key: int
    run_id: str


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
        select = "SELECT run_id, created_key, document FROM runs WHERE workflow_id = ? AND project_id = ?"
        key = None if after is None else (after.created_key, after.run_id)
        with self.database.transaction(commit=False) as tx:
            rows, more = NEWEST_CREATED_FIRST.page(tx, select, (workflow_id, project_id), key, limit)
        items = [decode_run(row["document"]) for row in rows]
        last = RunPageKey(*NEWEST_CREATED_FIRST.key_of(rows[-1])) if more else None
        return items, last

"""The analytics projection: per workflow per UTC day of a run's createdAt, what the Analytics tab sums.

A run is counted on the day it was created, under its current status: when its status changes,
its count moves between statuses on that same day (the projection keeps a small per-run state row
to know where). A day's duration histogram is one small JSON list in its row, so an answer
reads one row per day (plus a few cost rows per day) and costs O(days), never O(runs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.utils import get_topic

from domain.run import FINISHED, STATUSES, Run
from domain.workflow import Workflow
from projections.analytics_buckets import (
    decode_histogram,
    duration_bucket,
    encode_histogram,
    from_dense,
    to_dense,
)
from projections.documents import epoch_ms
from projections.erasure import ERASED_WORKFLOWS_DDL, is_erased, mark_erased
from projections.read_model import ReadModel
from store.database import Tx


def utc_day(moment: datetime) -> int:
    """The proleptic ordinal of the UTC calendar day of a moment: the day key of every row."""
    return moment.astimezone(UTC).date().toordinal()


DAILY_COLUMNS = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "cost_usd",
    "finished_cost_usd",
    "duration_sum_ms",
    "max_duration_ms",
)
ADD_TO_DAY = (
    "INSERT INTO analytics_daily (workflow_id, day, queued, running, succeeded, failed, cancelled,"
    " cost_usd, finished_cost_usd, duration_sum_ms, max_duration_ms)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (workflow_id, day) DO UPDATE SET"
    " queued = analytics_daily.queued + excluded.queued,"
    " running = analytics_daily.running + excluded.running,"
    " succeeded = analytics_daily.succeeded + excluded.succeeded,"
    " failed = analytics_daily.failed + excluded.failed,"
    " cancelled = analytics_daily.cancelled + excluded.cancelled,"
    " cost_usd = analytics_daily.cost_usd + excluded.cost_usd,"
    " finished_cost_usd = analytics_daily.finished_cost_usd + excluded.finished_cost_usd,"
    " duration_sum_ms = analytics_daily.duration_sum_ms + excluded.duration_sum_ms,"
    " max_duration_ms = CASE WHEN excluded.max_duration_ms > analytics_daily.max_duration_ms"
    " THEN excluded.max_duration_ms ELSE analytics_daily.max_duration_ms END"
)
ADD_COST = (
    "INSERT INTO analytics_cost (workflow_id, day, model, cli_id, cost_usd, runs) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (workflow_id, day, model, cli_id) DO UPDATE SET"
    " cost_usd = analytics_cost.cost_usd + excluded.cost_usd, runs = analytics_cost.runs + excluded.runs"
)


class AnalyticsProjection(ReadModel):
    """Keeps per-day counts, costs and duration histograms of every workflow's runs."""

    name = "analytics"
    tables = (
        "analytics_daily",
        "analytics_cost",
        "analytics_run_state",
        "analytics_run_models",
    )
    topics = tuple(
        get_topic(cls) for cls in (Run.Started, Run.Reported, Run.Cancelled, Workflow.PermanentlyDeleted)
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS analytics_daily ("
        " workflow_id TEXT NOT NULL, day INTEGER NOT NULL,"
        " queued INTEGER NOT NULL, running INTEGER NOT NULL, succeeded INTEGER NOT NULL,"
        " failed INTEGER NOT NULL, cancelled INTEGER NOT NULL, cost_usd DOUBLE PRECISION NOT NULL,"
        " finished_cost_usd DOUBLE PRECISION NOT NULL, duration_sum_ms BIGINT NOT NULL,"
        " max_duration_ms BIGINT NOT NULL, durations TEXT NOT NULL DEFAULT '[]',"
        " PRIMARY KEY (workflow_id, day))",
        "CREATE TABLE IF NOT EXISTS analytics_cost ("
        " workflow_id TEXT NOT NULL, day INTEGER NOT NULL, model TEXT NOT NULL, cli_id TEXT NOT NULL,"
        " cost_usd DOUBLE PRECISION NOT NULL, runs INTEGER NOT NULL,"
        " PRIMARY KEY (workflow_id, day, model, cli_id))",
        "CREATE TABLE IF NOT EXISTS analytics_run_state ("
        " run_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, day INTEGER NOT NULL, status TEXT NOT NULL,"
        " created_ms BIGINT NOT NULL, started_ms BIGINT, cost_usd DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX IF NOT EXISTS analytics_run_state_workflow ON analytics_run_state (workflow_id)",
        "CREATE TABLE IF NOT EXISTS analytics_run_models ("
        " run_id TEXT NOT NULL, model TEXT NOT NULL, cli_id TEXT NOT NULL, workflow_id TEXT NOT NULL,"
        " PRIMARY KEY (run_id, model, cli_id))",
        "CREATE INDEX IF NOT EXISTS analytics_run_models_workflow ON analytics_run_models (workflow_id)",
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
        day = utc_day(event.timestamp)
        inserted = tx.execute(
            "INSERT INTO analytics_run_state (run_id, workflow_id, day, status, created_ms, started_ms,"
            " cost_usd) VALUES (?, ?, ?, 'queued', ?, NULL, 0) ON CONFLICT (run_id) DO NOTHING"
            " RETURNING run_id",
            (run_id, event.workflow_id, day, epoch_ms(event.timestamp)),
        ).fetchone()
        if inserted is not None:
            self._add_to_day(tx, event.workflow_id, day, queued=1)

    @apply.register
    def _reported(self, event: Run.Reported, tx: Tx) -> None:
        state = self._state(tx, str(event.originator_id))
        if state is None:
            return
        if event.cost_lines:
            self._add_costs(tx, state, event.cost_lines)
        if event.status is not None:
            self._move(tx, state, event.status, event.timestamp)

    @apply.register
    def _cancelled(self, event: Run.Cancelled, tx: Tx) -> None:
        state = self._state(tx, str(event.originator_id))
        if state is not None:
            self._move(tx, state, "cancelled", event.timestamp)

    @apply.register
    def _erased(self, event: Workflow.PermanentlyDeleted, tx: Tx) -> None:
        mark_erased(tx, str(event.originator_id))
        for table in self.tables:
            tx.execute(f"DELETE FROM {table} WHERE workflow_id = ?", (str(event.originator_id),))  # noqa: S608

    def _add_costs(self, tx: Tx, state: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        added = 0.0
        for line in lines:
            cost = float(line["costUsd"])
            new_model = tx.execute(
                "INSERT INTO analytics_run_models (run_id, model, cli_id, workflow_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, model, cli_id) DO NOTHING RETURNING run_id",
                (state["run_id"], line["model"], line["cliId"], state["workflow_id"]),
            ).fetchone()
            tx.execute(
                ADD_COST,
                (
                    state["workflow_id"],
                    state["day"],
                    line["model"],
                    line["cliId"],
                    cost,
                    0 if new_model is None else 1,
                ),
            )
            added += cost
        state["cost_usd"] += added
        tx.execute(
            "UPDATE analytics_run_state SET cost_usd = ? WHERE run_id = ?",
            (state["cost_usd"], state["run_id"]),
        )
        self._add_to_day(tx, state["workflow_id"], state["day"], cost_usd=added)

    def _move(self, tx: Tx, state: dict[str, Any], status: str, at: datetime) -> None:
        """Move the run's count to its new status on its creation day; a finish adds its duration."""
        old = state["status"]
        if status == old or status not in STATUSES:
            return
        at_ms = epoch_ms(at)
        started_ms = state["started_ms"]
        if status == "running" and started_ms is None:
            started_ms = at_ms
        changes: dict[str, Any] = {old: -1, status: 1}
        if status in FINISHED:
            duration = at_ms - (started_ms if started_ms is not None else state["created_ms"])
            changes["duration_sum_ms"] = duration
            changes["max_duration_ms"] = duration
            changes["finished_cost_usd"] = state["cost_usd"]
        self._add_to_day(tx, state["workflow_id"], state["day"], **changes)
        if status in FINISHED:
            self._add_duration(
                tx, state["workflow_id"], state["day"], duration_bucket(changes["duration_sum_ms"])
            )
        tx.execute(
            "UPDATE analytics_run_state SET status = ?, started_ms = ? WHERE run_id = ?",
            (status, started_ms, state["run_id"]),
        )
        state["status"], state["started_ms"] = status, started_ms

    @staticmethod
    def _add_duration(tx: Tx, workflow_id: str, day: int, bucket: int) -> None:
        """Count one finished run in its day's histogram (the day's row exists since the run started)."""
        key = (workflow_id, day)
        row = tx.execute(
            "SELECT durations FROM analytics_daily WHERE workflow_id = ? AND day = ?", key
        ).fetchone()
        histogram = from_dense(decode_histogram(row["durations"]))
        histogram[bucket] = histogram.get(bucket, 0) + 1
        tx.execute(
            "UPDATE analytics_daily SET durations = ? WHERE workflow_id = ? AND day = ?",
            (encode_histogram(to_dense(histogram)).decode(), *key),
        )

    @staticmethod
    def _add_to_day(tx: Tx, workflow_id: str, day: int, **deltas: Any) -> None:
        values = [deltas.get(column, 0) for column in DAILY_COLUMNS]
        tx.execute(ADD_TO_DAY, (workflow_id, day, *values))

    @staticmethod
    def _state(tx: Tx, run_id: str) -> dict[str, Any] | None:
        row = tx.execute(
            "SELECT run_id, workflow_id, day, status, created_ms, started_ms, cost_usd"
            " FROM analytics_run_state WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            return None
        return {
            key: row[key]
            for key in ("run_id", "workflow_id", "day", "status", "created_ms", "started_ms", "cost_usd")
        }

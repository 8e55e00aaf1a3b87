"""Queries on the analytics read model: one workflow's Analytics tab over a window of UTC days."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

import msgspec

from domain.camel import CamelStruct
from projections.analytics_buckets import (
    Counts,
    DayStats,
    Granularity,
    Window,
    decode_histogram,
    merge_dense,
    p95_ms,
    sum_by_bucket,
    total,
    window,
)
from projections.documents import iso_ms
from projections.related_queries import RelatedCounts
from store.database import Database

COST_DIGITS = 10
"""Dollar sums are rounded to this many decimals, so float drift never shows on the wire."""


class Kpis(CamelStruct):
    """The window's totals; averages and p95 are over finished runs."""

    total_runs: int
    succeeded_runs: int
    failed_runs: int
    cancelled_runs: int
    active_runs: int
    success_rate: float | None
    total_cost_usd: float
    avg_cost_usd: float | None
    avg_duration_ms: int | None
    p95_duration_ms: int | None


class CostBreakdownEntry(CamelStruct):
    """What one model on one CLI cost over the window, and how many runs used it."""

    model: str
    cli_id: str
    cost_usd: float
    runs: int


class SuccessRatePoint(CamelStruct):
    bucket_start: str
    runs: int
    succeeded: int
    success_rate: float | None


class RunsOverTimePoint(CamelStruct):
    bucket_start: str
    total: int
    succeeded: int
    failed: int
    cancelled: int


class RunStatistics(CamelStruct):
    """The Analytics tab of one workflow over a window: what its runs did and cost."""

    workflow_id: str
    days: int
    granularity: str
    from_: str = msgspec.field(name="from")
    to: str
    kpis: Kpis
    cost_breakdown: list[CostBreakdownEntry]
    success_rate_series: list[SuccessRatePoint]
    runs_over_time: list[RunsOverTimePoint]
    related: RelatedCounts


def _money(amount: float) -> float:
    return round(amount, COST_DIGITS) + 0.0


def _bucket_stamp(day: date) -> str:
    return iso_ms(datetime.combine(day, time(), tzinfo=UTC))


class Analytics:
    """Queries on the analytics read model; the clock is injectable so tests can pin "now"."""

    def __init__(self, database: Database, clock: Callable[[], datetime] | None = None) -> None:
        self.database = database
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))

    def run_statistics(
        self, workflow_id: str, days: int, granularity: Granularity, related: RelatedCounts
    ) -> RunStatistics:
        """The Analytics tab over the `days` most recent UTC days, summed into `granularity` buckets."""
        span = window(self.clock(), days)
        day_rows, cost_rows = self._rows(workflow_id, span)
        by_day = {date.fromordinal(row["day"]): _day_stats(row) for row in day_rows}
        buckets = sum_by_bucket(span, granularity, by_day)
        histogram = merge_dense(decode_histogram(row["durations"]) for row in day_rows)
        return RunStatistics(
            workflow_id=workflow_id,
            days=days,
            granularity=granularity,
            from_=iso_ms(span.start),
            to=iso_ms(span.end),
            kpis=_kpis(total(stats for _, stats in buckets), histogram),
            cost_breakdown=_cost_breakdown(cost_rows),
            success_rate_series=_success_rate_series(buckets),
            runs_over_time=_runs_over_time(buckets),
            related=related,
        )

    def _rows(self, workflow_id: str, span: Window) -> tuple[list[Any], list[Any]]:
        """The window's day rows, and its costs summed per model and CLI, read in one transaction."""
        scope = (workflow_id, span.first_day.toordinal(), span.last_day.toordinal())
        with self.database.transaction(commit=False) as tx:
            day_rows = tx.execute(
                "SELECT day, queued, running, succeeded, failed, cancelled, cost_usd, finished_cost_usd,"
                " duration_sum_ms, max_duration_ms, durations FROM analytics_daily"
                " WHERE workflow_id = ? AND day BETWEEN ? AND ?",
                scope,
            ).fetchall()
            cost_rows = tx.execute(
                "SELECT model, cli_id, SUM(cost_usd) AS cost_usd, SUM(runs) AS runs FROM analytics_cost"
                " WHERE workflow_id = ? AND day BETWEEN ? AND ? GROUP BY model, cli_id",
                scope,
            ).fetchall()
        return day_rows, cost_rows


def _cost_breakdown(cost_rows: Sequence[Any]) -> list[CostBreakdownEntry]:
    """The costliest model and CLI first."""
    costs = [
        CostBreakdownEntry(row["model"], row["cli_id"], _money(float(row["cost_usd"])), int(row["runs"]))
        for row in cost_rows
    ]
    costs.sort(key=lambda entry: (-entry.cost_usd, entry.model, entry.cli_id))
    return costs


def _success_rate_series(buckets: Sequence[tuple[date, DayStats]]) -> list[SuccessRatePoint]:
    return [
        SuccessRatePoint(
            _bucket_stamp(start), stats.counts.total, stats.counts.succeeded, stats.counts.success_rate
        )
        for start, stats in buckets
    ]


def _runs_over_time(buckets: Sequence[tuple[date, DayStats]]) -> list[RunsOverTimePoint]:
    return [
        RunsOverTimePoint(
            _bucket_stamp(start),
            stats.counts.total,
            stats.counts.succeeded,
            stats.counts.failed,
            stats.counts.cancelled,
        )
        for start, stats in buckets
    ]


def _day_stats(row: Any) -> DayStats:
    return DayStats(
        counts=Counts(
            queued=int(row["queued"]),
            running=int(row["running"]),
            succeeded=int(row["succeeded"]),
            failed=int(row["failed"]),
            cancelled=int(row["cancelled"]),
        ),
        cost_usd=float(row["cost_usd"]),
        finished_cost_usd=float(row["finished_cost_usd"]),
        duration_sum_ms=int(row["duration_sum_ms"]),
        max_duration_ms=int(row["max_duration_ms"]),
    )


def _kpis(whole: DayStats, histogram: Mapping[int, int]) -> Kpis:
    counts = whole.counts
    return Kpis(
        total_runs=counts.total,
        succeeded_runs=counts.succeeded,
        failed_runs=counts.failed,
        cancelled_runs=counts.cancelled,
        active_runs=counts.active,
        success_rate=counts.success_rate,
        total_cost_usd=_money(whole.cost_usd),
        avg_cost_usd=_money(whole.finished_cost_usd / counts.finished) if counts.finished else None,
        avg_duration_ms=round(whole.duration_sum_ms / counts.finished) if counts.finished else None,
        p95_duration_ms=p95_ms(histogram, whole.max_duration_ms),
    )

"""The calendar and statistics of the Analytics tab, as pure functions over per-day rows.

Durations are kept as a log-scale histogram so a window's p95 merges O(buckets) counters, not
O(runs) durations. Bucket i >= 1 holds durations d with 2^((i-2)/16) < d <= 2^((i-1)/16) ms
(bucket 0 holds d <= 0, bucket 1 holds d == 1), and p95 is reported as the upper bound of the
bucket holding the nearest-rank 95th percentile, rounded down to whole milliseconds, and capped at
the longest duration in the window (kept per day as a max). So the answer is never below the exact
p95 and at most 2^(1/16) - 1 (about 4.4 %) above it; it is exact when p95 is the longest duration.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import msgspec

Granularity = Literal["daily", "weekly", "monthly"]
GRANULARITIES: tuple[Granularity, ...] = ("daily", "weekly", "monthly")
MIN_DAYS = 1
MAX_DAYS = 366
STEPS_PER_DOUBLING = 16
"""Histogram resolution: 16 buckets per doubling, so neighbouring bounds differ by 2^(1/16)."""
P95_RELATIVE_ERROR = 2 ** (1 / STEPS_PER_DOUBLING) - 1


@dataclass(frozen=True)
class Window:
    """The `days` most recent UTC calendar days, today included, up to the moment asked."""

    first_day: date
    last_day: date
    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def window(now: datetime, days: int) -> Window:
    """The window ending at `now`: from midnight UTC of its first day to `now` itself."""
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"days must be {MIN_DAYS}..{MAX_DAYS}")
    end = now.astimezone(UTC)
    last_day = end.date()
    first_day = last_day - timedelta(days=days - 1)
    return Window(first_day, last_day, datetime.combine(first_day, time(), tzinfo=UTC), end)


def bucket_of(day: date, granularity: Granularity) -> date:
    """The first day of the bucket holding `day`: itself, its ISO week's Monday, its month's 1st."""
    if granularity == "daily":
        return day
    if granularity == "weekly":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def bucket_starts(span: Window, granularity: Granularity) -> list[date]:
    """Every bucket that overlaps the window, oldest first (the first may start before it)."""
    starts = []
    start = bucket_of(span.first_day, granularity)
    while start <= span.last_day:
        starts.append(start)
        start = _next_bucket(start, granularity)
    return starts


def _next_bucket(start: date, granularity: Granularity) -> date:
    if granularity == "daily":
        return start + timedelta(days=1)
    if granularity == "weekly":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


@dataclass
class Counts:
    """Runs created in a span, by their status now."""

    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.running + self.succeeded + self.failed + self.cancelled

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def active(self) -> int:
        return self.queued + self.running

    @property
    def success_rate(self) -> float | None:
        """succeeded / finished, or None when nothing has finished."""
        return self.succeeded / self.finished if self.finished else None

    def add(self, other: Counts) -> None:
        self.queued += other.queued
        self.running += other.running
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.cancelled += other.cancelled


@dataclass
class DayStats:
    """One workflow's day, as the analytics projection stores it."""

    counts: Counts = field(default_factory=Counts)
    cost_usd: float = 0.0
    finished_cost_usd: float = 0.0
    duration_sum_ms: int = 0
    max_duration_ms: int = 0

    def add(self, other: DayStats) -> None:
        self.counts.add(other.counts)
        self.cost_usd += other.cost_usd
        self.finished_cost_usd += other.finished_cost_usd
        self.duration_sum_ms += other.duration_sum_ms
        self.max_duration_ms = max(self.max_duration_ms, other.max_duration_ms)


def sum_by_bucket(
    span: Window, granularity: Granularity, days: Mapping[date, DayStats]
) -> list[tuple[date, DayStats]]:
    """Every bucket of the window with the sum of its days inside the window (empty ones zero)."""
    buckets = {start: DayStats() for start in bucket_starts(span, granularity)}
    for day, stats in days.items():
        if span.first_day <= day <= span.last_day:
            buckets[bucket_of(day, granularity)].add(stats)
    return list(buckets.items())


def total(days: Iterable[DayStats]) -> DayStats:
    whole = DayStats()
    for stats in days:
        whole.add(stats)
    return whole


def duration_bucket(duration_ms: int) -> int:
    """The smallest bucket whose exact bound 2^((i-1)/16) is at least the duration."""
    if duration_ms <= 0:
        return 0
    index = 1 + math.ceil(STEPS_PER_DOUBLING * math.log2(duration_ms))
    while _bound(index) < duration_ms:
        index += 1
    while index > 1 and _bound(index - 1) >= duration_ms:
        index -= 1
    return index


def _bound(index: int) -> float:
    return 2 ** ((index - 1) / STEPS_PER_DOUBLING)


def bucket_upper_ms(index: int) -> int:
    """The largest whole-millisecond duration bucket `index` holds."""
    return 0 if index <= 0 else math.floor(_bound(index))


def p95_ms(histogram: Mapping[int, int], longest_ms: int | None = None) -> int | None:
    """The nearest-rank 95th percentile, as its bucket's upper bound (at most the longest duration)."""
    count = sum(histogram.values())
    if count == 0:
        return None
    rank = math.ceil(0.95 * count)
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            upper = bucket_upper_ms(index)
            return upper if longest_ms is None else max(0, min(upper, longest_ms))
    raise AssertionError("unreachable: the ranks add up to the count")


def to_dense(histogram: Mapping[int, int]) -> list[int]:
    """`[first bucket, its count, the next bucket's count, ...]`: one day's histogram, compactly."""
    if not histogram:
        return []
    low, high = min(histogram), max(histogram)
    return [low, *(histogram.get(index, 0) for index in range(low, high + 1))]


def from_dense(dense: Sequence[int]) -> dict[int, int]:
    return {dense[0] + offset: runs for offset, runs in enumerate(dense[1:]) if runs} if dense else {}


def merge_dense(parts: Iterable[Sequence[int]]) -> dict[int, int]:
    """Sum days' dense histograms column by column (in C, via zip and sum): O(days x buckets), fast."""
    spans = [part for part in parts if part]
    if not spans:
        return {}
    low = min(part[0] for part in spans)
    high = max(part[0] + len(part) - 1 for part in spans)
    rows = [[0] * (part[0] - low) + list(part[1:]) + [0] * (high - part[0] - len(part) + 1) for part in spans]
    return {low + offset: runs for offset, runs in enumerate(map(sum, zip(*rows, strict=True))) if runs}


def merge_histograms(parts: Iterable[Mapping[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for part in parts:
        for index, runs in part.items():
            merged[index] = merged.get(index, 0) + runs
    return merged


encode_histogram = msgspec.json.Encoder().encode
decode_histogram = msgspec.json.Decoder(list[int]).decode

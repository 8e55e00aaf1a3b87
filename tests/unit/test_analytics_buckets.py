"""The Analytics tab's calendar and statistics: windows, buckets, rates and the p95 histogram."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from projections.analytics_buckets import (
    P95_RELATIVE_ERROR,
    Counts,
    DayStats,
    bucket_of,
    bucket_starts,
    bucket_upper_ms,
    duration_bucket,
    from_dense,
    merge_dense,
    merge_histograms,
    p95_ms,
    sum_by_bucket,
    to_dense,
    total,
    window,
)


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC)


def day_with(**counts: int) -> DayStats:
    return DayStats(counts=Counts(**counts))


def test_window_is_the_most_recent_days_from_midnight_to_now() -> None:
    now = at("2026-11-28T09:15:02.123")
    span = window(now, 30)
    assert span.first_day == date(2026, 10, 30)
    assert span.last_day == date(2026, 11, 28)
    assert span.start == at("2026-10-30T00:00:00")
    assert span.end == now
    assert span.days == 30


def test_window_converts_other_time_zones_to_utc() -> None:
    now = datetime.fromisoformat("2026-11-29T01:00:00+02:00")
    assert window(now, 1).last_day == date(2026, 11, 28)


@pytest.mark.parametrize("days", [0, 367, -1])
def test_window_refuses_days_out_of_range(days: int) -> None:
    with pytest.raises(ValueError, match="days"):
        window(at("2026-11-28T00:00:00"), days)


def test_one_day_window_is_today_alone() -> None:
    span = window(at("2026-11-28T23:59:59.999"), 1)
    assert span.first_day == span.last_day == date(2026, 11, 28)
    assert bucket_starts(span, "daily") == [date(2026, 11, 28)]
    assert bucket_starts(span, "weekly") == [date(2026, 11, 23)]
    assert bucket_starts(span, "monthly") == [date(2026, 11, 1)]


def test_366_day_window_has_366_daily_buckets_across_a_leap_year() -> None:
    span = window(at("2028-12-31T12:00:00"), 366)
    starts = bucket_starts(span, "daily")
    assert len(starts) == 366
    assert starts[0] == date(2028, 1, 1)
    assert date(2028, 2, 29) in starts
    assert starts[-1] == date(2028, 12, 31)
    monthly = bucket_starts(span, "monthly")
    assert monthly == [date(2028, month, 1) for month in range(1, 13)]


def test_366_days_reaching_back_into_the_previous_year() -> None:
    span = window(at("2027-03-01T00:00:00"), 366)
    assert span.first_day == date(2026, 3, 1)
    assert bucket_starts(span, "monthly")[0] == date(2026, 3, 1)
    assert bucket_starts(span, "monthly")[-1] == date(2027, 3, 1)
    assert len(bucket_starts(span, "monthly")) == 13
    weekly = bucket_starts(span, "weekly")
    assert weekly[0] == date(2026, 2, 23)  # Monday before Sunday 2026-03-01
    assert all(start.weekday() == 0 for start in weekly)
    assert weekly[-1] == date(2027, 3, 1)


def test_week_straddling_a_month_and_a_year_starts_on_its_monday() -> None:
    assert bucket_of(date(2026, 12, 28), "weekly") == date(2026, 12, 28)
    assert bucket_of(date(2027, 1, 3), "weekly") == date(2026, 12, 28)
    assert bucket_of(date(2027, 1, 4), "weekly") == date(2027, 1, 4)
    span = window(at("2027-01-03T10:00:00"), 7)
    assert span.first_day == date(2026, 12, 28)
    assert bucket_starts(span, "weekly") == [date(2026, 12, 28)]
    assert bucket_starts(span, "monthly") == [date(2026, 12, 1), date(2027, 1, 1)]
    rows = {date(2026, 12, 31): day_with(succeeded=2), date(2027, 1, 2): day_with(failed=1)}
    [(start, week)] = sum_by_bucket(span, "weekly", rows)
    assert start == date(2026, 12, 28)
    assert (week.counts.succeeded, week.counts.failed, week.counts.total) == (2, 1, 3)
    months = sum_by_bucket(span, "monthly", rows)
    assert [(s, m.counts.total) for s, m in months] == [(date(2026, 12, 1), 2), (date(2027, 1, 1), 1)]


def test_week_starting_before_the_window_counts_only_days_inside_it() -> None:
    span = window(at("2026-11-26T08:00:00"), 3)  # Tue 24 .. Thu 26
    rows = {
        date(2026, 11, 23): day_with(succeeded=5),  # Monday: in the bucket, outside the window
        date(2026, 11, 24): day_with(succeeded=1),
    }
    [(start, week)] = sum_by_bucket(span, "weekly", rows)
    assert start == date(2026, 11, 23)
    assert week.counts.succeeded == 1


def test_leap_day_is_its_own_daily_bucket_and_in_february() -> None:
    span = window(at("2028-03-01T06:00:00"), 3)
    assert bucket_starts(span, "daily") == [date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1)]
    rows = {date(2028, 2, 29): day_with(succeeded=1, cancelled=1)}
    daily = sum_by_bucket(span, "daily", rows)
    assert [d.counts.total for _, d in daily] == [0, 2, 0]
    monthly = sum_by_bucket(span, "monthly", rows)
    assert [(s, m.counts.total) for s, m in monthly] == [(date(2028, 2, 1), 2), (date(2028, 3, 1), 0)]
    assert bucket_of(date(2028, 2, 29), "weekly") == date(2028, 2, 28)


def test_first_and_last_day_of_the_window_count_and_the_days_around_them_do_not() -> None:
    span = window(at("2026-11-28T09:00:00"), 7)
    rows = {
        date(2026, 11, 21): day_with(succeeded=100),  # the day before the window
        date(2026, 11, 22): day_with(succeeded=1),  # first day
        date(2026, 11, 28): day_with(failed=1),  # today, the last day
        date(2026, 11, 29): day_with(succeeded=100),  # tomorrow
    }
    daily = sum_by_bucket(span, "daily", rows)
    assert len(daily) == 7
    assert daily[0] == (date(2026, 11, 22), day_with(succeeded=1))
    assert daily[-1] == (date(2026, 11, 28), day_with(failed=1))
    whole = total(stats for _, stats in daily)
    assert (whole.counts.total, whole.counts.success_rate) == (2, 0.5)


@pytest.mark.parametrize("granularity", ["daily", "weekly", "monthly"])
def test_empty_window_has_every_bucket_with_zeros_and_null_rates(granularity: str) -> None:
    span = window(at("2026-11-28T09:00:00"), 60)
    buckets = sum_by_bucket(span, granularity, {})  # type: ignore[arg-type]
    assert [start for start, _ in buckets] == bucket_starts(span, granularity)  # type: ignore[arg-type]
    assert all(stats == DayStats() for _, stats in buckets)
    assert all(stats.counts.success_rate is None for _, stats in buckets)
    assert p95_ms({}) is None


def test_weekly_buckets_are_every_monday_overlapping_the_window() -> None:
    span = window(at("2026-11-28T09:00:00"), 30)  # Fri 2026-10-30 .. Sat 2026-11-28
    assert bucket_starts(span, "weekly") == [
        date(2026, 10, 26),
        date(2026, 11, 2),
        date(2026, 11, 9),
        date(2026, 11, 16),
        date(2026, 11, 23),
    ]
    assert bucket_starts(span, "monthly") == [date(2026, 10, 1), date(2026, 11, 1)]


def test_success_rate_counts_cancelled_as_finished_and_ignores_active() -> None:
    counts = Counts(queued=3, running=2, succeeded=3, failed=1, cancelled=2)
    assert counts.total == 11
    assert counts.active == 5
    assert counts.success_rate == 0.5
    assert Counts(queued=4, running=1).success_rate is None


def test_duration_buckets_bound_every_duration_within_the_stated_error() -> None:
    for duration in [1, 2, 3, 7, 999, 1000, 1001, 60_000, 3_600_000, 86_400_000, 10**10]:
        upper = bucket_upper_ms(duration_bucket(duration))
        assert duration <= upper < duration * (1 + P95_RELATIVE_ERROR) + 1e-9, duration
    assert duration_bucket(0) == 0
    assert bucket_upper_ms(duration_bucket(0)) == 0
    assert duration_bucket(-5) == 0


def test_duration_buckets_are_monotonic() -> None:
    previous = 0
    for duration in range(0, 5000):
        index = duration_bucket(duration)
        assert index >= previous
        previous = index


def test_p95_is_within_the_relative_error_of_the_exact_nearest_rank_p95() -> None:
    generator = random.Random(7)
    for size in [1, 2, 19, 20, 21, 100, 1000]:
        durations = [generator.randint(1, 4_000_000) for _ in range(size)]
        exact = sorted(durations)[math.ceil(0.95 * size) - 1]
        by_day: list[dict[int, int]] = [{}, {}, {}]
        for n, duration in enumerate(durations):
            part = by_day[n % 3]
            index = duration_bucket(duration)
            part[index] = part.get(index, 0) + 1
        reported = p95_ms(merge_histograms(by_day))
        assert reported is not None
        assert exact <= reported <= exact * (1 + P95_RELATIVE_ERROR), (size, exact, reported)


def test_p95_of_one_duration_is_its_bucket_bound() -> None:
    assert p95_ms({duration_bucket(1000): 1}) == bucket_upper_ms(duration_bucket(1000))
    assert p95_ms({duration_bucket(1024): 1}) == 1024  # powers of two are exact bounds


def test_month_buckets_roll_over_december() -> None:
    span = window(at("2027-02-10T00:00:00"), 90)
    assert bucket_starts(span, "monthly") == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
        date(2027, 2, 1),
    ]
    assert span.first_day == date(2027, 2, 10) - timedelta(days=89)


def test_p95_is_capped_at_the_longest_duration_and_stays_above_the_exact_one() -> None:
    histogram = {duration_bucket(1000): 1}
    assert p95_ms(histogram, longest_ms=1000) == 1000
    many = merge_histograms([{duration_bucket(100): 19}, {duration_bucket(5000): 1}])
    assert p95_ms(many, longest_ms=5000) == bucket_upper_ms(duration_bucket(100))
    assert 100 <= bucket_upper_ms(duration_bucket(100)) <= 100 * (1 + P95_RELATIVE_ERROR)


def test_dense_histograms_round_trip_and_merge_like_sparse_ones() -> None:
    generator = random.Random(3)
    days = [
        {duration_bucket(generator.randint(1, 10**7)): generator.randint(1, 5) for _ in range(n)}
        for n in (0, 1, 5, 40)
    ]
    for histogram in days:
        assert from_dense(to_dense(histogram)) == histogram
    assert to_dense({}) == []
    assert merge_dense(to_dense(histogram) for histogram in days) == merge_histograms(days)
    assert merge_dense([]) == {}

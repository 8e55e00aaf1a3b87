"""Backdated events for imports and demo data: history that happened before it was recorded.

The aggregates' public commands still decide (and validate) what happened; only the moment each
new event says it happened is replaced before the events are stored. The library stamps events
with the current time, so without this a demo store could only hold runs created today. Never
used by the API: a client cannot choose when its events happened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, DomainEventProtocol

from domain.service import position_of


def collect_at(aggregate: Aggregate, at: datetime) -> list[DomainEventProtocol[UUID]]:
    """Take the aggregate's pending events, each stamped with `at` (a timezone-aware moment)."""
    if at.tzinfo is None:
        raise ValueError("a backdated moment needs a time zone")
    moment = at.astimezone(UTC)
    events: Sequence[Any] = aggregate.collect_events()
    return [dataclasses.replace(event, timestamp=moment) for event in events]


def save_backdated(application: Application[UUID], events: Sequence[DomainEventProtocol[UUID]]) -> int | None:
    """Store the events in one transaction, in order; returns the position of the last one."""
    recordings = application.save(*events)
    return position_of(recordings)

"""How views see stored events: read in batches, decoded once, an erased one as a tombstone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification

from domain.errors import ErasedError
from projections.failures import is_transient
from store.sealing import REQUEST_ID, SealingMapper

if TYPE_CHECKING:
    from projections.tracked_view import TrackedView


@dataclass(frozen=True)
class Tombstone:
    """An erased event as views see it: what stays readable after its workflow's data key is destroyed.

    Its content is gone; its kind (`topic`), place, time, actor and request id are not, so the audit
    log keeps an item for it after any rebuild. `project_id` is set on creations and run events,
    `workflow_id` on run events. Views that keep nothing of erased workflows ignore tombstones.
    """

    position: int
    topic: str
    originator_id: UUID
    originator_version: int
    timestamp: datetime
    actor: Any
    project_id: str | None
    workflow_id: str | None
    request_id: str | None


POSITION = "position"
"""The attribute that holds a decoded event's position in the store (its notification id)."""


def position_of(event: object) -> int:
    """The store position of an event handed to a view, set by the catch-up driver."""
    position: int = getattr(event, POSITION)
    return position


@dataclass(frozen=True)
class DecodedEvent:
    """A stored event as the views see it: decoded, or the reason it could not be."""

    position: int
    topic: str
    event: object = None
    error: Exception | None = None


def read_batch(
    application: Application[UUID],
    runners: Sequence[TrackedView],
    after: int,
    head: int,
    batch_size: int,
    mapper: Mapper[UUID] | None = None,
    prepare: Callable[[Sequence[Notification]], None] | None = None,
) -> tuple[list[DecodedEvent], int]:
    """The next events any of the runners reads, and the position the batch takes them to.

    `mapper` decodes them instead of the application's, after `prepare` has seen them (a replay's
    fetches their data keys in one query, and remembers them).
    """
    notifications, new_position = read_notifications(application, runners, after, head, batch_size)
    if prepare is not None:
        prepare(notifications)
    return decode(mapper or application.mapper, notifications), new_position


def read_notifications(
    application: Application[UUID], runners: Sequence[TrackedView], after: int, head: int, batch_size: int
) -> tuple[Sequence[Notification], int]:
    """The next stored events any of the runners reads, undecoded, and the position they reach."""
    topics = sorted({topic for runner in runners for topic in runner.projection.topics})
    if any(not runner.projection.topics for runner in runners):
        topics = []
    notifications = application.recorder.select_notifications(
        start=after + 1, limit=batch_size, stop=head, topics=topics
    )
    full = len(notifications) == batch_size
    return notifications, notifications[-1].id if full else head


def decode(mapper: Mapper[UUID], notifications: Sequence[Notification]) -> list[DecodedEvent]:
    """Notifications as domain events, each with its position; an erased event as a tombstone.

    The application's sealing mapper reads the batch's data keys fresh, in one query (never from
    the process's cache: a view decodes only what the store can still decrypt).
    """
    if isinstance(mapper, SealingMapper) and mapper.source is mapper.keys:
        with mapper.batch(notifications):
            return _decode(mapper, notifications)
    return _decode(mapper, notifications)


def _decode(mapper: Mapper[UUID], notifications: Sequence[Notification]) -> list[DecodedEvent]:
    events: list[DecodedEvent] = []
    for notification in notifications:
        try:
            event: object = mapper.to_domain_event(notification)
            vars(event)[POSITION] = notification.id  # events are frozen; their state is this dict
        except ErasedError:
            event = tombstone(mapper, notification)
        except Exception as error:
            if is_transient(error):
                raise
            events.append(DecodedEvent(notification.id, notification.topic, error=error))
            continue
        events.append(DecodedEvent(notification.id, notification.topic, event))
    return events


def tombstone(mapper: Mapper[UUID], notification: Notification) -> Tombstone:
    state: dict[str, Any] = mapper.clear_state(notification)  # type: ignore[attr-defined]
    return Tombstone(
        position=notification.id,
        topic=notification.topic,
        originator_id=UUID(str(notification.originator_id)),
        originator_version=notification.originator_version,
        timestamp=state["timestamp"],
        actor=state.get("actor"),
        project_id=state.get("project_id"),
        workflow_id=state.get("workflow_id"),
        request_id=state.get(REQUEST_ID),
    )

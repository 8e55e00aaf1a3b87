"""The snapshot table's event store, sealed like the events and tried once per call like them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, EventStore, InfrastructureFactory, Mapper
from eventsourcing.postgres import PostgresAggregateRecorder

from store.database import Dialect


def _once(method: Any) -> Any:
    """The library's recorder method without its retry loop, as for the events (store/outage.py)."""
    return method.__wrapped__


class PostgresSnapshotRecorder(PostgresAggregateRecorder):
    """The library's snapshot recorder, each call tried once: an outage surfaces within one wait."""

    insert_events = _once(PostgresAggregateRecorder.insert_events)
    select_events = _once(PostgresAggregateRecorder.select_events)


def snapshot_recorder(factory: InfrastructureFactory, dialect: Dialect) -> AggregateRecorder:
    """The snapshot table's recorder: `stored_snapshots` on SQLite, `workflows_snapshots` on PostgreSQL."""
    if dialect == "postgres":
        prefix = factory.env.name.lower() or "stored"
        datastore: Any = factory.datastore  # type: ignore[attr-defined]
        return PostgresSnapshotRecorder(datastore, events_table_name=f"{prefix}_snapshots")
    return factory.aggregate_recorder(purpose="snapshots")


def snapshot_store(
    factory: InfrastructureFactory, mapper: Mapper[UUID], dialect: Dialect
) -> EventStore[UUID]:
    return EventStore(mapper=mapper, recorder=snapshot_recorder(factory, dialect))

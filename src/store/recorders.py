"""The event recorders' one addition: a save's new data keys go into the transaction of its events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

UPSERT_KEY = (
    "INSERT INTO data_keys (aggregate_id, data_key) VALUES (?, ?)"
    " ON CONFLICT (aggregate_id) DO UPDATE SET data_key = excluded.data_key"
)
"""Run by the recorders in the transaction of a workflow's first events: the key exists iff they do.

An existing row is replaced: it can only be a key left by an earlier release that stored the key
before the events and then failed, since the first event's insert fails if the workflow exists."""
DATA_KEYS_ARGUMENT = "data_keys"
"""The `insert_events` keyword that carries {aggregate id: wrapped data key} to store with the events."""


def insert_data_keys(cursor: Any, kwargs: dict[str, Any], placeholder: str) -> None:
    """Before the events, in their transaction: a workflow's key exists iff its first events do."""
    keys: dict[str, str] | None = kwargs.get(DATA_KEYS_ARGUMENT)
    if keys:
        cursor.executemany(UPSERT_KEY.replace("?", placeholder), list(keys.items()))


class SqliteRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, storing new data keys with the events (one commit per save)."""

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        insert_data_keys(c, kwargs, "?")
        return super()._insert_events(c, stored_events, **kwargs)

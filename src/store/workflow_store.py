"""The workflow service over this deployment's store: content sealed per workflow, snapshots beside events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    ApplicationRecorder,
    EventStore,
    Mapper,
    Notification,
    Recording,
    Transcoder,
)

from domain.service import WorkflowService
from store.database import Database, Dialect
from store.group_commit import GroupCommit, insert_with_keys
from store.key_encryption import KeyEncryptionKey
from store.sealing import DataKeys, SealingMapper
from store.snapshot_store import snapshot_store
from store.transcoding import FastJSONTranscoder


class SealedEventStore(EventStore[UUID]):
    """Stores a save's events with the data keys it made, in one transaction shared with concurrent saves."""

    def __init__(self, mapper: SealingMapper, recorder: ApplicationRecorder) -> None:
        super().__init__(mapper=mapper, recorder=recorder)
        self.sealing = mapper
        self.group = GroupCommit(insert_with_keys(recorder))

    def put(self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any) -> list[Recording[UUID]]:
        if any(value is not None for value in kwargs.values()):  # tracking records: the library's way
            return super().put(domain_events, **kwargs)
        if not domain_events:
            return []
        keys = self.sealing.keys
        epoch = keys.epoch()
        stored, new_keys = self.sealing.to_stored_events(domain_events)
        positions = self.group.insert(stored, {owner: wrapped for owner, (_, wrapped) in new_keys.items()})
        keys.remember({owner: key for owner, (key, _) in new_keys.items()}, epoch)
        if not positions:
            return []
        return [
            Recording(
                event,
                Notification(
                    originator_id=record.originator_id,
                    originator_version=record.originator_version,
                    topic=record.topic,
                    state=record.state,
                    id=position,
                ),
            )
            for event, record, position in zip(domain_events, stored, positions, strict=True)
        ]


class StoredWorkflowService(WorkflowService):
    """The domain's service with the library's construction steps pointed at the sealed store."""

    name = "workflows"
    """Named as the domain's service is, so its tables stay `workflows_events` and `workflows_snapshots`."""

    def __init__(self, env: dict[str, str], dialect: Dialect) -> None:
        self.dialect: Dialect = dialect
        super().__init__(env)

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON encoding, decoded faster (store.transcoding)."""
        transcoder = FastJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def construct_mapper(self) -> Mapper[UUID]:
        self.database = Database(self.factory.datastore, self.dialect)  # type: ignore[attr-defined]
        self.data_keys = DataKeys(self.database, KeyEncryptionKey.from_env(self.env.get))
        return SealingMapper(transcoder=self.construct_transcoder(), keys=self.data_keys)

    def construct_event_store(self) -> EventStore[UUID]:
        """Saves go through a group commit that stores new data keys with the events (store.recorders)."""
        assert isinstance(self.mapper, SealingMapper)
        return SealedEventStore(self.mapper, self.recorder)

    def construct_snapshot_store(self) -> EventStore[UUID]:
        """Sealed by the same mapper as the events; its recorder makes no table (create_event_tables does)."""
        return snapshot_store(self.factory, self.mapper, self.dialect)

    def create_event_tables(self) -> None:
        """Create the event store's tables; both of the library's recorders can, though not by type."""
        recorder: Any = self.recorder
        recorder.create_table()
        if self.snapshots is not None:
            snapshots: Any = self.snapshots.recorder
            snapshots.create_table()

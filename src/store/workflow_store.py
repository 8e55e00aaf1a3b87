"""The workflow service over this deployment's store: content sealed per workflow, snapshots beside events."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import EventStore, Mapper

from domain.service import WorkflowService
from store.database import Database, Dialect
from store.key_encryption import KeyEncryptionKey
from store.sealing import DataKeys, SealingMapper
from store.snapshot_store import snapshot_store


class StoredWorkflowService(WorkflowService):
    """The domain's service with the library's construction steps pointed at the sealed store."""

    name = "workflows"
    """Named as the domain's service is, so its tables stay `workflows_events` and `workflows_snapshots`."""

    def __init__(self, env: dict[str, str], dialect: Dialect) -> None:
        self.dialect: Dialect = dialect
        super().__init__(env)

    def construct_mapper(self) -> Mapper[UUID]:
        self.database = Database(self.factory.datastore, self.dialect)  # type: ignore[attr-defined]
        self.data_keys = DataKeys(self.database, KeyEncryptionKey.from_env(self.env.get))
        return SealingMapper(transcoder=self.construct_transcoder(), keys=self.data_keys)

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

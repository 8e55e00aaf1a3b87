"""The read model's contract: its tables, the topics it reads, and how one event changes its rows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from eventsourcing.utils import get_topic

from domain.workflow import Workflow
from store.database import Tx

WORKFLOW_EVENTS: tuple[type, ...] = (
    Workflow.Created,
    Workflow.Duplicated,
    Workflow.Updated,
    Workflow.Renamed,
    Workflow.Reverted,
    Workflow.Deleted,
    Workflow.Restored,
    Workflow.PermanentlyDeleted,
)
"""Every event of a workflow's life, for the read models that follow all of it."""


def topics_of(*classes: type) -> tuple[str, ...]:
    """The stored topics of event classes: what a projection's `topics` allow-list holds."""
    return tuple(get_topic(cls) for cls in classes)


class ReadModel(ABC):
    """A read model: its tables, the event topics it reads, and how each event changes its rows.

    `apply` gets domain events and `Tombstone`s, each with its store position (`position_of`).
    """

    name: ClassVar[str]
    topics: ClassVar[tuple[str, ...]] = ()
    tables: ClassVar[tuple[str, ...]] = ()
    ddl: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def apply(self, event: Any, tx: Tx) -> None:
        """Change the view's rows for one event, inside the batch's transaction."""

    @property
    def tracking_table(self) -> str:
        return f"{self.name}_tracking"

    def all_ddl(self) -> list[str]:
        return [
            *self.ddl,
            f"CREATE TABLE IF NOT EXISTS {self.tracking_table} ("
            " application_name TEXT PRIMARY KEY, notification_id BIGINT NOT NULL)",
        ]

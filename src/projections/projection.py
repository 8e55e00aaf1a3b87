"""The read model's contract: its tables, the topics it reads, and how one event changes its rows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from domain.database import Tx


class Projection(ABC):
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

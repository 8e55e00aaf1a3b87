"""Destroys a workflow's data key once its permanent delete is recorded, making its events unreadable."""

from __future__ import annotations

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.utils import get_topic

from domain.database import Tx
from domain.sealing import DataKeys
from domain.workflow import Workflow
from projections.runner import Projection


class ErasureProjection(Projection):
    """A policy run like a projection, so a crash between the event and the erasure is retried."""

    name = "erasure"
    topics = (get_topic(Workflow.PermanentlyDeleted),)

    @singledispatchmethod
    def apply(self, event: object, tx: Tx) -> None:
        """Only permanent deletes erase anything."""

    @apply.register
    def _erased(self, event: Workflow.PermanentlyDeleted, tx: Tx) -> None:
        DataKeys.destroy(tx, str(event.originator_id))

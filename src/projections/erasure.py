"""Destroys a workflow's data key once its permanent delete is recorded, making its events unreadable.

It also keeps the ids of erased workflows (`erased_workflows`), which the run read models consult:
a run started while its workflow was being erased can be stored after the erase, sealed with the
key as it was, and be decoded in the same catch-up batch before the key is gone; such a run must
never reach a view.
"""

from __future__ import annotations

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.utils import get_topic

from domain.workflow import Workflow
from projections.read_model import ReadModel
from store.database import Database, Tx
from store.sealing import DataKeys

ERASED_WORKFLOWS_DDL = "CREATE TABLE IF NOT EXISTS erased_workflows (workflow_id TEXT PRIMARY KEY)"


def mark_erased(tx: Tx, workflow_id: str) -> None:
    """Record that a workflow was erased; idempotent, so every view that sees the erase may call it."""
    tx.execute(
        "INSERT INTO erased_workflows (workflow_id) VALUES (?) ON CONFLICT (workflow_id) DO NOTHING",
        (workflow_id,),
    )


def is_erased(tx: Tx, workflow_id: str) -> bool:
    row = tx.execute("SELECT 1 FROM erased_workflows WHERE workflow_id = ?", (workflow_id,)).fetchone()
    return row is not None


class ErasureProjection(ReadModel):
    """A policy run like a projection, so a crash between the event and the erasure is retried."""

    name = "erasure"
    tables = ()
    """`erased_workflows` is not dropped by a rebuild: the run views read it while they run, and
    re-applying an erase only inserts the same id again."""
    topics = (get_topic(Workflow.PermanentlyDeleted),)
    ddl = (ERASED_WORKFLOWS_DDL,)

    def __init__(self, database: Database) -> None:
        self.database = database

    @singledispatchmethod
    def apply(self, event: object, tx: Tx) -> None:
        """Only permanent deletes erase anything."""

    @apply.register
    def _erased(self, event: Workflow.PermanentlyDeleted, tx: Tx) -> None:
        workflow_id = str(event.originator_id)
        DataKeys.destroy(tx, workflow_id)
        mark_erased(tx, workflow_id)
        tx.after_commit(self.database.clear_residue)

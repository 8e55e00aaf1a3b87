"""The related projection: the personas, issues and learning versions a workflow's runs were linked to.

Runs report links (`{"id", "name"}` per kind); each linked entity keeps how many distinct runs of
the workflow linked it and the latest linking run's createdAt. A name sent later fills in (or
updates) the one kept; a link without a name keeps the name already known.
"""

from __future__ import annotations

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.utils import get_topic

from domain.run import LINK_KINDS, Run
from domain.workflow import Workflow
from projections.documents import epoch_ms
from projections.erasure import ERASED_WORKFLOWS_DDL, is_erased, mark_erased
from projections.read_model import ReadModel
from store.database import Tx

ADD_LINK = (
    "INSERT INTO related_entities (workflow_id, kind, entity_id, name, run_count, last_run_ms)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workflow_id, kind, entity_id) DO UPDATE SET"
    " name = COALESCE(excluded.name, related_entities.name),"
    " run_count = related_entities.run_count + excluded.run_count,"
    " last_run_ms = CASE WHEN excluded.last_run_ms > related_entities.last_run_ms"
    " THEN excluded.last_run_ms ELSE related_entities.last_run_ms END"
)


class RelatedProjection(ReadModel):
    """Keeps, per workflow, every entity its runs linked, with distinct run counts and last run."""

    name = "related"
    tables = ("related_runs", "related_run_links", "related_entities")
    topics = tuple(get_topic(cls) for cls in (Run.Started, Run.Reported, Workflow.PermanentlyDeleted))
    ddl = (
        "CREATE TABLE IF NOT EXISTS related_runs ("
        " run_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, created_ms BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS related_runs_workflow ON related_runs (workflow_id)",
        "CREATE TABLE IF NOT EXISTS related_run_links ("
        " run_id TEXT NOT NULL, kind TEXT NOT NULL, entity_id TEXT NOT NULL, workflow_id TEXT NOT NULL,"
        " PRIMARY KEY (run_id, kind, entity_id))",
        "CREATE INDEX IF NOT EXISTS related_run_links_workflow ON related_run_links (workflow_id)",
        "CREATE TABLE IF NOT EXISTS related_entities ("
        " workflow_id TEXT NOT NULL, kind TEXT NOT NULL, entity_id TEXT NOT NULL, name TEXT,"
        " run_count INTEGER NOT NULL, last_run_ms BIGINT NOT NULL,"
        " PRIMARY KEY (workflow_id, kind, entity_id))",
        "CREATE INDEX IF NOT EXISTS related_entities_recent"
        " ON related_entities (workflow_id, kind, last_run_ms, entity_id)",
        ERASED_WORKFLOWS_DDL,
    )

    @singledispatchmethod
    def apply(self, event: object, tx: Tx) -> None:
        """Events without a rule here change nothing."""

    @apply.register
    def _started(self, event: Run.Started, tx: Tx) -> None:
        if is_erased(tx, event.workflow_id):
            return  # started while its workflow was being erased: erased with it
        tx.execute(
            "INSERT INTO related_runs (run_id, workflow_id, created_ms) VALUES (?, ?, ?)"
            " ON CONFLICT (run_id) DO NOTHING",
            (str(event.originator_id), event.workflow_id, epoch_ms(event.timestamp)),
        )

    @apply.register
    def _reported(self, event: Run.Reported, tx: Tx) -> None:
        if not any(event.links.get(kind) for kind in LINK_KINDS):
            return
        run_id = str(event.originator_id)
        run = tx.execute(
            "SELECT workflow_id, created_ms FROM related_runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if run is None:
            return
        workflow_id, created_ms = run["workflow_id"], run["created_ms"]
        for kind in LINK_KINDS:
            for link in event.links.get(kind, []):
                new = tx.execute(
                    "INSERT INTO related_run_links (run_id, kind, entity_id, workflow_id)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (run_id, kind, entity_id) DO NOTHING RETURNING run_id",
                    (run_id, kind, link["id"], workflow_id),
                ).fetchone()
                tx.execute(
                    ADD_LINK,
                    (workflow_id, kind, link["id"], link.get("name"), 0 if new is None else 1, created_ms),
                )

    @apply.register
    def _erased(self, event: Workflow.PermanentlyDeleted, tx: Tx) -> None:
        mark_erased(tx, str(event.originator_id))
        for table in self.tables:
            tx.execute(f"DELETE FROM {table} WHERE workflow_id = ?", (str(event.originator_id),))  # noqa: S608

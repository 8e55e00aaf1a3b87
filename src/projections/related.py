"""The related read model: personas, issues and learning versions a workflow's runs were linked to.

Runs report links (`{"id", "name"}` per kind); each linked entity keeps how many distinct runs of
the workflow linked it and the latest linking run's createdAt. A name sent later fills in (or
updates) the one kept; a link without a name keeps the name already known.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.utils import get_topic
from msgspec import Struct

from domain.run import LINK_KINDS, Run
from domain.workflow import Workflow
from projections.analytics import dump_tables
from projections.analytics_queries import RelatedCounts
from projections.documents import EPOCH, epoch_ms, iso_ms
from projections.erasure import ERASED_WORKFLOWS_DDL, is_erased, mark_erased
from projections.read_model import ReadModel
from store.database import Database, Tx


class RelatedEntity(Struct, rename="camel"):
    """A persona, issue or learning version, as the Related tab lists it."""

    id: str
    name: str | None
    run_count: int
    last_run_at: str


class RelatedAnswer(Struct, rename="camel"):
    """The Related tab of one workflow; every list most recent first."""

    workflow_id: str
    personas: list[RelatedEntity]
    issues: list[RelatedEntity]
    learning_versions: list[RelatedEntity]


ADD_LINK = (
    "INSERT INTO related_entities (workflow_id, kind, entity_id, name, run_count, last_run_ms)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workflow_id, kind, entity_id) DO UPDATE SET"
    " name = COALESCE(excluded.name, related_entities.name),"
    " run_count = related_entities.run_count + excluded.run_count,"
    " last_run_ms = CASE WHEN excluded.last_run_ms > related_entities.last_run_ms"
    " THEN excluded.last_run_ms ELSE related_entities.last_run_ms END"
)
TABLE_COLUMNS = {
    "related_runs": ("run_id", "workflow_id", "created_ms"),
    "related_run_links": ("run_id", "kind", "entity_id", "workflow_id"),
    "related_entities": ("workflow_id", "kind", "entity_id", "name", "run_count", "last_run_ms"),
}


class RelatedProjection(ReadModel):
    """Keeps, per workflow, every entity its runs linked, with distinct run counts and last run."""

    name = "related"
    tables = tuple(TABLE_COLUMNS)
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


class Related:
    """Queries on the related read model; callers check the workflow belongs to their project."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def answer(self, workflow_id: str) -> RelatedAnswer:
        with self.database.transaction(commit=False) as tx:
            rows = tx.execute(
                "SELECT kind, entity_id, name, run_count, last_run_ms FROM related_entities"
                " WHERE workflow_id = ?",
                (workflow_id,),
            ).fetchall()
        rows.sort(key=lambda row: (-int(row["last_run_ms"]), row["entity_id"]))
        lists: dict[str, list[RelatedEntity]] = {kind: [] for kind in LINK_KINDS}
        for row in rows:
            lists[row["kind"]].append(
                RelatedEntity(
                    id=row["entity_id"],
                    name=row["name"],
                    run_count=int(row["run_count"]),
                    last_run_at=iso_ms(EPOCH + timedelta(milliseconds=int(row["last_run_ms"]))),
                )
            )
        return RelatedAnswer(
            workflow_id=workflow_id,
            personas=lists["personas"],
            issues=lists["issues"],
            learning_versions=lists["learningVersions"],
        )

    def counts(self, workflow_id: str) -> RelatedCounts:
        """How many distinct entities of each kind the workflow's runs linked (all time)."""
        with self.database.transaction(commit=False) as tx:
            rows = tx.execute(
                "SELECT kind, COUNT(*) AS entities FROM related_entities WHERE workflow_id = ? GROUP BY kind",
                (workflow_id,),
            ).fetchall()
        found: dict[str, Any] = {row["kind"]: int(row["entities"]) for row in rows}
        return RelatedCounts(
            personas=found.get("personas", 0),
            issues=found.get("issues", 0),
            learning_versions=found.get("learningVersions", 0),
        )

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, for comparing the view with a fresh rebuild."""
        with self.database.transaction(commit=False) as tx:
            return dump_tables(tx, TABLE_COLUMNS)

"""Queries on the related read model: the entities a workflow's runs linked, listed or counted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain.camel import CamelStruct
from domain.run import LINK_KINDS
from projections.documents import EPOCH, iso_ms
from store.database import Database


class RelatedEntity(CamelStruct):
    """A persona, issue or learning version, as the Related tab lists it."""

    id: str
    name: str | None
    run_count: int
    last_run_at: str


class RelatedEntities(CamelStruct):
    """The Related tab of one workflow; every list most recent first."""

    workflow_id: str
    personas: list[RelatedEntity]
    issues: list[RelatedEntity]
    learning_versions: list[RelatedEntity]


class RelatedCounts(CamelStruct):
    """How many distinct entities of each kind a workflow's runs linked, as the Analytics tab shows."""

    personas: int
    issues: int
    learning_versions: int


class Related:
    """Queries on the related read model; callers check the workflow belongs to their project."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def entities(self, workflow_id: str) -> RelatedEntities:
        """Every entity the workflow's runs linked, by kind, the most recently linked first."""
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
        return RelatedEntities(
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

"""The audit model's own copy of each workflow, and what a content change did to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.workflow_content import CONTENT_FIELDS
from domain.workflow_content import ContentData as Content
from projections.documents import decode_dict
from store.database import Tx


@dataclass(frozen=True)
class WorkflowState:
    """The audit model's own copy of a workflow: its project, content version and content (None: erased)."""

    project_id: str
    version: int
    content: Content | None


def read_state(tx: Tx, workflow_id: str) -> WorkflowState | None:
    """The workflow as the audit model last saw it; None when its creation was never seen."""
    row = tx.execute(
        "SELECT project_id, version, content FROM audit_workflow WHERE workflow_id = ?", (workflow_id,)
    ).fetchone()
    if row is None:
        return None
    content = None if row["content"] is None else decode_dict(row["content"])
    return WorkflowState(row["project_id"], int(row["version"]), content)


def changes_between(before: Content, changes: Content) -> dict[str, Any]:
    """`changedFields` and `changes: {field: {from, to}}` of a content change, fields in document order."""
    fields = [field for field in CONTENT_FIELDS if field in changes]
    return {
        "changedFields": fields,
        "changes": {field: {"from": before.get(field), "to": changes[field]} for field in fields},
    }

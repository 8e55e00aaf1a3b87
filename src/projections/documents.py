"""The workflow document and list item as clients read them, rendered in one place from typed content.

The document is the content (`WorkflowContent`, the one declaration of a workflow's fields) plus its
lifecycle, so a new content field appears in documents, views and answers without a change here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from domain.camel import CamelStruct
from domain.formats import Timestamp
from domain.workflow_content import FIELD_NAMES, WorkflowChanges, WorkflowContent

CLI_TOOL_LABELS = {
    "claude": "Claude Code",
    "codex": "Codex CLI",
    "gemini": "Gemini CLI",
    "cursor": "Cursor CLI",
    "opencode": "OpenCode",
}


class Display(CamelStruct):
    """Labels the list UI shows for the CLI tools a workflow uses."""

    cli_tools: list[str]
    cli_tool_labels: list[str]


class ActorRow(CamelStruct):
    """The API key an event was recorded for."""

    key_id: str
    key_name: str


class WorkflowListItem(CamelStruct):
    """One row of the workflows table."""

    id: str
    name: str
    description: str | None
    type: str
    version: int
    step_count: int
    persona_step_count: int
    created_at: Timestamp
    updated_at: Timestamp
    deleted_at: Timestamp | None
    display: Display


class WorkflowDocument(WorkflowContent, kw_only=True):
    """The full workflow, as `get` and every workflow write answer it: its content, then its lifecycle."""

    id: str
    version: int
    created_at: Timestamp
    updated_at: Timestamp
    deleted_at: Timestamp | None
    display: Display

    def content(self) -> WorkflowContent:
        return WorkflowContent(**{name: getattr(self, name) for name in FIELD_NAMES})

    def list_item(self) -> WorkflowListItem:
        return WorkflowListItem(
            id=self.id,
            name=self.name,
            description=self.description,
            type=self.type,
            version=self.version,
            step_count=len(self.pipeline_steps),
            persona_step_count=len(self.persona_pipeline_steps),
            created_at=self.created_at,
            updated_at=self.updated_at,
            deleted_at=self.deleted_at,
            display=self.display,
        )

    def revised(
        self,
        at: datetime,
        changes: WorkflowChanges | None = None,
        deleted_at: datetime | str | UnsetType | None = UNSET,
    ) -> WorkflowDocument:
        """The document after an event at `at`: a content change is a new version, a delete or restore not."""
        content = self.content() if changes is None else self.content().changed(changes)
        version = self.version if changes is None else self.version + 1
        deleted = self.deleted_at if isinstance(deleted_at, UnsetType) else deleted_at
        return render_document(self.id, content, version, self.created_at, at, deleted)


def render_document(
    workflow_id: str,
    content: WorkflowContent,
    version: int,
    created_at: datetime | str,
    updated_at: datetime | str,
    deleted_at: datetime | str | None,
) -> WorkflowDocument:
    """The workflow document, from its content and lifecycle facts."""
    return WorkflowDocument(
        id=workflow_id,
        version=version,
        created_at=_stamp(created_at),
        updated_at=_stamp(updated_at),
        deleted_at=None if deleted_at is None else _stamp(deleted_at),
        display=display_of(content),
        **{name: getattr(content, name) for name in FIELD_NAMES},
    )


def display_of(content: WorkflowContent) -> Display:
    """Distinct CLI ids of steps, persona steps and the default config, first seen first."""
    seen: dict[str, None] = {}
    holders = (*content.pipeline_steps, *content.persona_pipeline_steps, content.default_config)
    for holder in holders:
        if holder is not None and holder.cli_id:
            seen.setdefault(holder.cli_id)
    tools = list(seen)
    return Display(cli_tools=tools, cli_tool_labels=[CLI_TOOL_LABELS.get(t, t) for t in tools])


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    """Exact whole milliseconds since the epoch (no float rounding), as the wire timestamps show them."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def iso_ms(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, the one timestamp format on the wire."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def micros(moment: datetime) -> int:
    """A sortable integer for a moment, used as a keyset key."""
    return int(moment.timestamp() * 1_000_000)


def _stamp(value: datetime | str) -> str:
    return value if isinstance(value, str) else iso_ms(value)


encode = msgspec.json.encode
decode_dict = msgspec.json.Decoder(dict[str, Any]).decode
decode_document = msgspec.json.Decoder(WorkflowDocument).decode
decode_list_item = msgspec.json.Decoder(WorkflowListItem).decode

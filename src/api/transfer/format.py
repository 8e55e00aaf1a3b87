"""The export file's format: its line types, the tables it carries, and how a binary value is written."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import msgspec

from composition.services import Services
from domain.camel import CamelStruct
from store.database import Dialect

FORMAT = "workflow-service-export"
FORMAT_VERSION = 1
PAGE_SIZE = 1000
"""Events read (export) or written (import) per round trip; memory stays constant whatever the size."""

TRANSFERRED_TABLES: dict[str, tuple[str, ...]] = {
    "projects": ("project_id",),
    "api_keys": ("key_id",),
    "data_keys": ("aggregate_id",),
    "data_key_check": ("id",),
    "service_secrets": ("name",),
    "files": ("storage_id",),
    "upload_slots": ("token_hash",),
    "idempotency_keys": ("scope", "idempotency_key"),
}
"""Every table not derived from events, and its primary key (the order rows are exported in)."""
REPLACED_TABLES = frozenset({"data_key_check", "service_secrets"})
"""Tables every new store fills for itself on first open; the import replaces their rows."""


class TransferError(Exception):
    """The export file or the target store is not fit for an import; nothing was imported."""


class Header(CamelStruct, tag="header", tag_field="kind"):
    format: str
    version: int
    dialect: str
    exported_at: str
    head_position: int
    data_key_check: str | None
    counts: dict[str, int]


class EventLine(CamelStruct, tag="event", tag_field="kind"):
    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes
    """As stored (base64 in the file): sealed content stays sealed."""
    timestamp: str | None = None
    request_id: str | None = None


class RowLine(msgspec.Struct, tag="row", tag_field="kind"):
    table: str
    row: dict[str, Any]
    """Column → value; a binary value is written as {"base64": "..."}."""


class End(msgspec.Struct, tag="end", tag_field="kind"):
    counts: dict[str, int]


Line = Header | EventLine | RowLine | End
decode_line = msgspec.json.Decoder(Line).decode
encode_line = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class EventTable:
    """The library's events table: its qualified name and the column holding an event's position."""

    name: str
    position: str
    dialect: Dialect

    @classmethod
    def of(cls, services: Services) -> EventTable:
        recorder: Any = services.workflows.recorder
        table = f'"{recorder.events_table_name}"'
        if services.database.dialect == "postgres":
            return cls(f'"{recorder.datastore.schema}".{table}', "notification_id", "postgres")
        return cls(table, "rowid", "sqlite")


def encode_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        column: {"base64": bytes(value)} if isinstance(value, bytes | memoryview) else value
        for column, value in row.items()
    }


def decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"base64"}:
        return base64.b64decode(value["base64"])
    return value

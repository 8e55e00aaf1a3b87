"""Import: refuse an unfit file, key or store, load the lines in one transaction, then rebuild the views."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from api.transfer.format import FORMAT, FORMAT_VERSION, EventTable, Header, Line, TransferError, decode_line
from api.transfer.progress import PROGRESS_EVERY, Progress
from api.transfer.writer import StoreWriter
from composition.services import Services
from composition.settings import Settings
from store.database import StoreConfig
from store.key_encryption import KeyEncryptionKey, default_key_file, resolve_master_key


@dataclass
class ImportResult:
    """What an import stored, and how long the two phases took."""

    counts: dict[str, int]
    store_seconds: float
    views_seconds: float = 0.0
    source_dialect: str = ""


def import_store(
    services: Services,
    lines: Iterable[bytes],
    progress: Progress,
    view_progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Load an export into an empty store in one transaction, then bring every read model up to date."""
    stream = _decoded(lines)
    header = _header(next(stream, None))
    _refuse_a_wrong_key(services.workflows.data_keys.master_key, header)
    progress.total = header.counts.get("events")
    with services.database.datastore.transaction(commit=True) as cursor:
        writer = StoreWriter(cursor, services.database.dialect, EventTable.of(services))
        writer.lock_events()
        _refuse_a_used_store(writer)
        counts = writer.load(stream, progress)
        writer.restart_positions()
    result = ImportResult(counts, progress.seconds(), source_dialect=header.dialect)
    started = time.monotonic()
    _catch_up(services, view_progress)
    result.views_seconds = time.monotonic() - started
    return result


def read_header(path: Path) -> Header:
    """The header of an export file, read alone, so an import can be refused before the store is opened."""
    with path.open("rb") as file:
        return _header(next(_decoded([file.readline()]), None))


def check_master_key_for(settings: Settings, header: Header) -> None:
    """Refuse, before the target store is touched, a master key that cannot open the exported data keys.

    An embedded SQLite target without a configured key would get a new random key file on first
    open; it is refused instead, so the operator can put the source's key file there.
    """
    config = StoreConfig.from_url(settings.database_url)
    sqlite_path = config.env["SQLITE_DBNAME"] if config.dialect == "sqlite" else None
    configured = settings.master_key or settings.master_key_file
    if sqlite_path is not None and not configured and not default_key_file(sqlite_path).exists():
        raise TransferError(
            "the target needs the source deployment's master key: set WFS_MASTER_KEY, or copy the"
            f" source's key file to {default_key_file(sqlite_path)}"
        )
    master_key = resolve_master_key(
        value=settings.master_key, file=settings.master_key_file, sqlite_path=sqlite_path
    )
    _refuse_a_wrong_key(master_key, header)


def _refuse_a_wrong_key(master_key: KeyEncryptionKey, header: Header) -> None:
    """The master key must open the exported data keys, or every imported workflow is lost."""
    if header.data_key_check is None or master_key.opens(header.data_key_check):
        return
    raise TransferError(
        f"the master key from {master_key.source} is not the one the exported data keys are wrapped"
        " with: set WFS_MASTER_KEY (or WFS_MASTER_KEY_FILE) to the source deployment's key"
        " (for the embedded SQLite store, the content of the `<database file>.key` file)"
    )


def _decoded(lines: Iterable[bytes]) -> Iterator[Line]:
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield decode_line(raw)
        except msgspec.DecodeError as error:
            raise TransferError(
                f"line {number} is not a line of a workflow-service export: {error}"
            ) from None


def _header(first: Line | None) -> Header:
    if not isinstance(first, Header) or first.format != FORMAT:
        raise TransferError("the file does not start with a workflow-service export header")
    if first.version != FORMAT_VERSION:
        raise TransferError(
            f"the file is export format version {first.version}; this version reads {FORMAT_VERSION}"
        )
    return first


def _refuse_a_used_store(writer: StoreWriter) -> None:
    used = writer.used_tables()
    if used:
        listed = ", ".join(f"{count:,} {table}" for table, count in used.items())
        raise TransferError(f"the target store is not empty ({listed}); import only into a new, empty store")


def _catch_up(services: Services, report: Callable[[int, int], None] | None) -> None:
    """Every read model from position 0 to the head, a step at a time so progress can be shown."""
    head = services.workflows.recorder.max_notification_id() or 0
    step = PROGRESS_EVERY
    position = 0
    while position < head:
        position = min(position + step, head)
        services.projector.catch_up(position)
        if report is not None:
            report(position, head)

"""Proves the read models right: every event replayed in memory, every row compared with the live views.

The live views are read in one snapshot with their positions; each view is replayed into an
in-memory SQLite database from its own DDL and apply code, up to the position the live view had,
so a live service may keep writing meanwhile. Values are compared after normalising what the two
stores return differently (booleans as integers, NUMERIC as float, floats to 1e-9, JSON text by
value). Nothing is ignored: every column of every view table is derived from the events alone.
One thing a replay cannot reproduce: a workflow erased after the snapshot but before its events
are replayed reads as erased (its data key is gone), so run `verify` again after an erasure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from projections.scratch import MemoryScratch, Progress, replay
from projections.tracked_view import TrackedView
from store.database import Database, Tx

SNAPSHOT_PAGE = 5000
"""Live rows read per query while copying the live views."""
SHOWN = 50
"""Differences printed one a line; the rest are counted."""
VALUE_WIDTH = 120
"""How much of a value a difference line shows."""

Row = dict[str, Any]


@dataclass(frozen=True)
class Difference:
    """One row of one view table that is not what the replay built."""

    view: str
    table: str
    key: str
    column: str | None  # None: the whole row is only on one side
    live: Any
    replayed: Any

    def line(self) -> str:
        where = f"{self.view} {self.table} {self.key}"
        if self.column is None:
            side = "only in the live view" if self.replayed is None else "missing from the live view"
            return f"{where}: {side}"
        return f"{where} column {self.column}: live {_shown(self.live)}, replayed {_shown(self.replayed)}"


@dataclass
class VerifyReport:
    """The differences found, and what was compared."""

    views: int = 0
    tables: int = 0
    rows: int = 0
    events: int = 0
    seconds: float = 0.0
    differences: list[Difference] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)

    def lines(self) -> list[str]:
        shown = [difference.line() for difference in self.differences[:SHOWN]]
        if len(self.differences) > SHOWN:
            shown.append(f"... and {len(self.differences) - SHOWN} more differences")
        counts: dict[str, int] = {}
        for difference in self.differences:
            name = f"{difference.view} {difference.table}"
            counts[name] = counts.get(name, 0) + 1
        shown += [f"{name}: {count} difference{'s' * (count != 1)}" for name, count in counts.items()]
        shown += [
            f"{view}: could not be replayed ({type(error).__name__}: {error})"
            for view, error in self.errors.items()
        ]
        return shown

    def summary(self) -> str:
        rate = self.events / max(self.seconds, 1e-6)
        found = len(self.differences) + len(self.errors)
        verdict = "the read models equal a fresh replay" if not found else f"{found} difference"
        verdict += "s" if found > 1 else ""
        return (
            f"verify: {self.views} read models, {self.tables} tables, {self.rows:,} rows,"
            f" {self.events:,} events replayed in {self.seconds:.1f} s ({rate:,.0f} events/s): {verdict}"
        )

    @property
    def failed(self) -> bool:
        return bool(self.differences or self.errors)


def verify(
    application: Application[UUID],
    database: Database,
    runners: Sequence[TrackedView],
    progress: Progress | None = None,
) -> VerifyReport:
    """Compare every table of every view in `runners` with a fresh in-memory replay.

    The live rows are copied, a page at a time, into a second in-memory database beside the
    replay, so memory holds each row once, compactly, and the comparison is a join on the keys.
    """
    progress = progress or Progress("verify", quiet=True)
    scratch = MemoryScratch(like=database.dialect)
    try:
        scratch.create_tables(runners)
        scratch.connection.execute("ATTACH DATABASE ':memory:' AS live")
        positions = _snapshot(database, runners, scratch)
        progress.total = max(positions.values(), default=0)
        report = VerifyReport(views=len(runners), events=progress.total)
        replayed = replay(application, scratch, runners, positions, progress)
        report.errors = replayed.errors
        for runner in runners:
            if runner.name in replayed.errors:
                continue
            for table in runner.projection.tables:
                report.tables += 1
                report.rows += _count(scratch, table)
                report.differences += _differences(scratch, runner.name, table)
    finally:
        scratch.close()
    report.seconds = progress.seconds()
    return report


def _snapshot(database: Database, runners: Sequence[TrackedView], scratch: MemoryScratch) -> dict[str, int]:
    """Every view's position, and a copy of its tables in `live`, as of one moment."""
    positions: dict[str, int] = {}
    with database.transaction(commit=False) as tx:
        if database.dialect == "postgres":
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for runner in runners:
            row = tx.execute(runner.select_position, (runner.application.name,)).fetchone()
            positions[runner.name] = int(row["notification_id"]) if row else 0
            for table in runner.projection.tables:
                _copy_live_table(tx, scratch, table)
    return positions


def _copy_live_table(tx: Tx, scratch: MemoryScratch, table: str) -> None:
    columns, key = scratch.columns(table), scratch.primary_key(table)
    connection = scratch.connection
    connection.execute(f"CREATE TABLE live.{table} AS SELECT * FROM main.{table} WHERE 0")  # noqa: S608
    insert = f"INSERT INTO live.{table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
    connection.execute("BEGIN")
    for rows in _pages(tx, table, columns, key):
        connection.executemany(insert, [tuple(_normal(row[column]) for column in columns) for row in rows])
    connection.execute("COMMIT")
    connection.execute(f"CREATE UNIQUE INDEX live.verify_{table} ON {table} ({', '.join(key)})")


def _pages(tx: Tx, table: str, columns: Sequence[str], key: Sequence[str]) -> Iterator[list[Any]]:
    """A live table's rows in key order, SNAPSHOT_PAGE at a time, so no page is the whole table."""
    keys = ", ".join(key)
    select = f"SELECT {', '.join(columns)} FROM {table}"  # noqa: S608 - the views' own names
    order = f" ORDER BY {keys} LIMIT {SNAPSHOT_PAGE}"
    rows = tx.execute(select + order).fetchall()
    while rows:
        yield rows
        if len(rows) < SNAPSHOT_PAGE:
            return
        after = tuple(rows[-1][column] for column in key)
        rows = tx.execute(f"{select} WHERE ({keys}) > ({', '.join('?' * len(key))}){order}", after).fetchall()


def _count(scratch: MemoryScratch, table: str) -> int:
    replayed = scratch.connection.execute(f"SELECT COUNT(*) FROM main.{table}").fetchone()[0]  # noqa: S608
    live = scratch.connection.execute(f"SELECT COUNT(*) FROM live.{table}").fetchone()[0]  # noqa: S608
    return max(int(replayed), int(live))


def _differences(scratch: MemoryScratch, view: str, table: str) -> list[Difference]:
    """Rows only live, rows only replayed, and, column by column, rows on both sides that differ."""
    columns, key = scratch.columns(table), scratch.primary_key(table)
    same_key = " AND ".join(f"new.{column} = old.{column}" for column in key)
    differs = " OR ".join(f"new.{column} IS NOT old.{column}" for column in columns)
    connection = scratch.connection
    differences: list[Difference] = []
    for here, there, side in (("live", "main", "live"), ("main", "live", "replayed")):
        alone = connection.execute(
            f"SELECT * FROM {here}.{table} AS new WHERE NOT EXISTS"  # noqa: S608
            f" (SELECT 1 FROM {there}.{table} AS old WHERE {same_key})"
        ).fetchall()
        for row in alone:
            only = dict(row)
            live, replayed = (only, None) if side == "live" else (None, only)
            differences.append(Difference(view, table, _shown_key(only, key), None, live, replayed))
    pairs = connection.execute(
        f"SELECT {', '.join(f'new.{c} AS r_{c}, old.{c} AS l_{c}' for c in columns)}"  # noqa: S608
        f" FROM main.{table} AS new JOIN live.{table} AS old ON {same_key} WHERE {differs}"
    ).fetchall()
    for pair in pairs:
        replayed_row = {column: pair[f"r_{column}"] for column in columns}
        live_row = {column: pair[f"l_{column}"] for column in columns}
        shown_key = _shown_key(replayed_row, key)
        differences += [
            Difference(view, table, shown_key, column, live_row[column], replayed_row[column])
            for column in columns
            if not same(live_row[column], replayed_row[column])
        ]
    return sorted(differences, key=lambda difference: difference.key)


def _shown_key(row: Row, key: Sequence[str]) -> str:
    return ", ".join(f"{column}={row[column]}" for column in key)


def _normal(value: Any) -> Any:
    """A value as both stores would give it: booleans and NUMERIC as numbers, bytes as bytes."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def same(live: Any, replayed: Any) -> bool:
    """Equal once normalised: numbers to 1e-9 relative, JSON text by value."""
    live, replayed = _normal(live), _normal(replayed)
    if live == replayed:
        return True
    if isinstance(live, int | float) and isinstance(replayed, int | float):
        return math.isclose(live, replayed, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(live, str) and isinstance(replayed, str):
        return _json(live) is not None and _json(live) == _json(replayed)
    return False


def _json(text: str) -> Any:
    if not text.startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= VALUE_WIDTH else f"{text[: VALUE_WIDTH - 3]}..."

"""Keyset paging: each page starts just past the last sort key of the page before, so none costs more."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from store.database import Tx


@dataclass(frozen=True)
class Keyset:
    """A unique order of a query's rows: its sort-key columns, all ascending or all descending."""

    columns: tuple[str, ...]
    descending: bool = False

    def page(
        self, tx: Tx, select: str, params: Sequence[Any], after: Sequence[Any] | None, limit: int
    ) -> tuple[list[Any], bool]:
        """Up to `limit` rows of `select` past the key `after` (None: from the start); whether more follow.

        `select` ends in its WHERE clause; one row more than the page is read to tell whether
        another page follows.
        """
        sql, args = select, list(params)
        if after is not None:
            sql += f" AND {self._past()}"
            args += after
        sql += f" ORDER BY {self._order()} LIMIT ?"
        args.append(limit + 1)
        rows = tx.execute(sql, args).fetchall()
        return rows[:limit], len(rows) > limit

    def key_of(self, row: Any) -> tuple[Any, ...]:
        """The sort key of a row, to continue after it."""
        return tuple(row[column] for column in self.columns)

    def _past(self) -> str:
        sign = "<" if self.descending else ">"
        if len(self.columns) == 1:
            return f"{self.columns[0]} {sign} ?"
        marks = ", ".join("?" for _ in self.columns)
        return f"({', '.join(self.columns)}) {sign} ({marks})"

    def _order(self) -> str:
        direction = " DESC" if self.descending else ""
        return ", ".join(f"{column}{direction}" for column in self.columns)

"""Keyset paging on both stores: every row exactly once, in order, whatever the page size and ties."""

from __future__ import annotations

from typing import Any

import pytest

from composition.services import Services
from projections.keyset import Keyset
from store.database import Tx

ROWS = [(1, "b"), (3, "a"), (1, "a"), (2, "c"), (2, "a"), (3, "c")]
"""Sort keys (rank, name), ties on the first column included."""


def pages(tx: Tx, order: Keyset, limit: int) -> list[tuple[list[tuple[Any, ...]], bool]]:
    """Every page of project p's rows, each continued after the key of the page before."""
    found: list[tuple[list[tuple[Any, ...]], bool]] = []
    after = None
    while True:
        rows, more = order.page(tx, "SELECT rank, name FROM paged WHERE project = ?", ("p",), after, limit)
        found.append(([order.key_of(row) for row in rows], more))
        if not more:
            return found
        after = order.key_of(rows[-1])


@pytest.mark.parametrize("descending", [False, True])
def test_pages_hold_every_row_once_in_order(services: Services, descending: bool) -> None:
    order = Keyset(("rank", "name"), descending=descending)
    with services.database.transaction(commit=False) as tx:  # rolled back: the table never outlives the test
        tx.execute("CREATE TEMPORARY TABLE paged (project TEXT, rank INTEGER, name TEXT)")
        for rank, name in ROWS:
            tx.execute("INSERT INTO paged (project, rank, name) VALUES ('p', ?, ?)", (rank, name))
            tx.execute("INSERT INTO paged (project, rank, name) VALUES ('other', ?, ?)", (rank, name + "!"))
        for limit in range(1, len(ROWS) + 2):
            found = pages(tx, order, limit)
            assert [key for page, _ in found for key in page] == sorted(ROWS, reverse=descending), limit
            assert [more for _, more in found] == [True] * (len(found) - 1) + [False]
            assert all(len(page) == limit for page, _ in found[:-1])

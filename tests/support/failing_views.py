"""Read models made to fail on chosen events, the way a bug or a value one store refuses makes them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from composition.services import Services
from projections.read_model import ReadModel
from projections.related import RelatedProjection
from tests.support.domain import report

NUL_NAME = "Ada\x00Lovelace"


def fail_on(
    monkeypatch: pytest.MonkeyPatch,
    projection: type[ReadModel],
    marked: Callable[[Any], bool],
    error: Callable[[], BaseException],
) -> None:
    """Make one projection raise `error()` after applying the events `marked` picks, half done as
    real failures often are, so only a rollback of its part leaves no trace of them."""
    real_apply = inspect.getattr_static(projection, "apply")  # a singledispatchmethod, unbound

    def apply(self: Any, event: Any, tx: Any) -> None:
        real_apply.__get__(self, type(self))(event, tx)
        if marked(event):
            raise error()

    monkeypatch.setattr(projection, "apply", apply)


def names_a_nul(event: Any) -> bool:
    links = getattr(event, "links", None) or {}
    return any("\x00" in str(link.get("name")) for kind in links.values() for link in kind)


def make_nul_unstorable(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL's TEXT refuses U+0000 by itself; SQLite stores it, so there the related view is made
    to refuse it the same way."""
    if services.database.dialect == "sqlite":
        fail_on(monkeypatch, RelatedProjection, names_a_nul, lambda: ValueError("text cannot hold NUL"))


def report_a_nul(services: Services, project_id: str, run_id: str) -> int:
    """Around the edge, which refuses NUL with 400: straight to the domain, as a script could."""
    links = {"personas": [{"id": "p-nul", "name": NUL_NAME}]}
    return report(services, project_id, run_id, status="running", branchName="poisoned", links=links)

"""What handlers can ask for, each one part of the process's `Services` (kept in `app.state.services`).

A controller declares the parts its handlers use (`dependencies = {...}`); a handler names each one
as a parameter marked `NamedDependency[...]`, so no handler reaches for anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from api.auth import provide_principal
from api.pagination import Cursors
from composition.services import Services
from store.accounts import Principal

T = TypeVar("T")

MakeVisible = Callable[[int | None], None]
"""Returns once every read model reflects the write that ended at this position (read-your-writes)."""

PrincipalDep = NamedDependency[Principal]
CursorsDep = NamedDependency[Cursors]
MakeVisibleDep = NamedDependency[MakeVisible]


def services_of(state: State) -> Services:
    services: Services = state.services
    return services


def from_services(part: Callable[[Services], T]) -> Provide:
    """A provider of one part of the process's Services: `from_services(lambda s: s.summaries)`."""

    def provide(state: State) -> T:
        return part(services_of(state))

    return Provide(provide, sync_to_thread=False)


def provide_cursors(state: State) -> Cursors:
    cursors: Cursors = state.cursors
    return cursors


PRINCIPAL = Provide(provide_principal, sync_to_thread=False)
CURSORS = Provide(provide_cursors, sync_to_thread=False)
MAKE_VISIBLE = from_services(lambda services: services.make_visible)

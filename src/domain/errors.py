"""Errors the domain raises; the API maps each kind to one HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a command can end in; nothing is stored when one is raised."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    """The thing does not exist in the caller's project (or never did, or was erased)."""


class ErasedError(NotFound):
    """The content is sealed with a data key that has since been destroyed (permanently deleted).

    A NotFound, so a command that loses a race with an erase answers 404 like any erased id.
    """


class Conflict(DomainError):
    """The command does not fit the current state (deleted, not deleted, busy)."""


class VersionConflict(Conflict):
    """The caller's expected version is not the current one."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(f"expected version {expected}, but the current version is {current}")
        self.expected = expected
        self.current = current


class InvalidInput(DomainError):
    """A value breaks an invariant; `field` is its path as clients spell it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Busy(Exception):
    """The store could not take a command in time (too many writers, or unreachable); retry shortly.

    Not a DomainError: it says nothing about the request, so it is never refused as a client error.
    """

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after

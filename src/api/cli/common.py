"""What every command shares: a backend opened for the command and closed when it ends."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeAlias

from composition.services import Services
from composition.settings import Settings

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""The `commands` group of the parser, where each module adds its own."""


@contextmanager
def command_backend() -> Iterator[Services]:
    """A backend for one command, closed when the command ends."""
    backend = Services(Settings.from_env())
    try:
        yield backend
    finally:
        backend.close()

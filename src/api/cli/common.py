"""What every command shares: the services opened for it and closed when it ends."""

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
def command_services() -> Iterator[Services]:
    """The services for one command, closed when the command ends."""
    services = Services(Settings.from_env())
    try:
        yield services
    finally:
        services.close()

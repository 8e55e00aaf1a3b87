"""The `workflow-service` command: serve the API, administer projects and keys, and operate the store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from api.cli import accounts, operations, serve
from store.key_encryption import MasterKeyError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        code: int = handler(args)
    except MasterKeyError as error:
        print(f"workflow-service: {error}", file=sys.stderr)
        return 2
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workflow-service",
        description="Event-sourced workflow service. The store is chosen by DATABASE_URL.",
    )
    commands = parser.add_subparsers(title="commands")
    serve.add_commands(commands)
    accounts.add_commands(commands)
    operations.add_commands(commands)
    return parser

"""`projects` and `keys`: create projects, and create, list and revoke their API keys."""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime, timedelta

from api.cli.common import Commands, command_services
from domain.errors import NotFound
from store.accounts import DEFAULT_SCOPE, KEY_SCOPES, ApiKey


def add_commands(commands: Commands) -> None:
    projects = commands.add_parser("projects", help="projects").add_subparsers(title="projects")
    create_project = projects.add_parser("create", help="create a project and an API key for it")
    create_project.add_argument("name")
    create_project.add_argument("--quiet", action="store_true", help="print the key alone")
    create_project.set_defaults(handler=create_project_command)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(title="keys")
    create_key = keys.add_parser("create", help="create an API key for a project")
    create_key.add_argument("--project", required=True, help="the project's id")
    create_key.add_argument("--name", default="api key", help="what the audit log calls the key")
    create_key.add_argument(
        "--scope",
        choices=KEY_SCOPES,
        default=DEFAULT_SCOPE,
        help="read: GET routes only; runner: GET routes, runs/report and runs/cancel;"
        f" write: every route (default {DEFAULT_SCOPE})",
    )
    expiry = create_key.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expires-in", type=_days, metavar="DAYS", help="the key stops working after DAYS days"
    )
    expiry.add_argument(
        "--expires-at",
        type=_future_time,
        metavar="TIME",
        help="the key stops working at TIME (ISO 8601; UTC if no offset)",
    )
    create_key.set_defaults(handler=create_key_command)
    keys.add_parser("list", help="list API keys (never their secrets)").set_defaults(
        handler=list_keys_command
    )
    revoke = keys.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=revoke_key_command)


def create_project_command(args: argparse.Namespace) -> int:
    with command_services() as services:
        new = services.accounts.create_project(args.name)
    if args.quiet:
        print(new.secret)
    else:
        print(f"project {new.project_id} ({args.name})")
        print(f"api key {new.key_id}: {new.secret}")
        print("The key is shown only this once; it is stored hashed.")
    return 0


def create_key_command(args: argparse.Namespace) -> int:
    with command_services() as services:
        try:
            new = services.accounts.create_key(args.project, args.name, args.scope, _expiry(args))
        except NotFound as error:
            print(error.detail, file=sys.stderr)
            return 1
    print(f"api key {new.key_id}: {new.secret}")
    expires = "never expires" if new.expires_at is None else f"expires {_shown(new.expires_at.isoformat())}"
    print(f"scope {new.scope}, {expires}. The key is shown only this once; it is stored hashed.")
    return 0


KEY_LIST_HEADER = ("ID", "SCOPE", "PROJECT", "NAME", "CREATED", "LAST USED", "EXPIRES", "REVOKED")


def list_keys_command(_: argparse.Namespace) -> int:
    """Tab-separated, one key a line under a header; `-` for a time that has not happened."""
    with command_services() as services:
        keys = services.accounts.list_keys()
    print("\t".join(KEY_LIST_HEADER))
    for key in keys:
        print("\t".join(_key_columns(key)))
    return 0


def _key_columns(key: ApiKey) -> tuple[str, ...]:
    times = (key.created_at, key.last_used_at, key.expires_at, key.revoked_at)
    return (key.key_id, key.scope, key.project_id, key.name, *(_shown(time) for time in times))


def _shown(stored: str | None) -> str:
    """A stored time as RFC 3339 UTC to the second (`last used` is only kept to the minute)."""
    if stored is None:
        return "-"
    return datetime.fromisoformat(stored).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


MAX_KEY_DAYS = 36_500


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        days = math.nan
    if not (math.isfinite(days) and 0 < days <= MAX_KEY_DAYS):
        raise argparse.ArgumentTypeError(
            f"DAYS is a number above 0 and at most {MAX_KEY_DAYS}, not {value!r}"
        )
    return days


def _future_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"TIME is an ISO 8601 time such as 2027-01-31T18:00:00Z, not {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise argparse.ArgumentTypeError(f"TIME {value!r} has already passed")
    return moment


def _expiry(args: argparse.Namespace) -> datetime | None:
    if args.expires_in is not None:
        expiry: datetime = datetime.now(UTC) + timedelta(days=args.expires_in)
        return expiry
    moment: datetime | None = args.expires_at
    return moment


def revoke_key_command(args: argparse.Namespace) -> int:
    with command_services() as services:
        try:
            services.accounts.revoke_key(args.key_id)
        except NotFound as error:
            print(error.detail, file=sys.stderr)
            return 1
    print(f"revoked {args.key_id}")
    return 0

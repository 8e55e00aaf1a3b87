"""The `workflow-service` command: serve the API and administer projects and keys."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from api.backend import Backend
from api.settings import BIND_HOST_VARIABLE, Settings
from domain.accounts import DEFAULT_SCOPE, KEY_SCOPES, ApiKey
from domain.errors import NotFound
from domain.key_encryption import MasterKeyError


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

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to bind; also a Host that upload URLs may be built on (see WFS_ALLOWED_HOSTS)",
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="server processes (PostgreSQL)")
    serve.set_defaults(handler=serve_command)

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

    rebuild = commands.add_parser(
        "rebuild", help="rebuild read models from the events, beside a live service, and swap them in"
    )
    rebuild.add_argument("--projection", metavar="NAME", help="rebuild this read model only")
    rebuild.set_defaults(handler=rebuild_command)
    commands.add_parser(
        "verify", help="replay every event in memory and compare with every read model (exit 1: differences)"
    ).set_defaults(handler=verify_command)
    _add_operation_commands(commands)
    return parser


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from api.logs import LOG_CONFIG, configure_logging
    from api.metrics import prepare_multiprocess_metrics

    configure_logging()  # JSON lines from here on, the catch-up's included
    os.environ[BIND_HOST_VARIABLE] = args.host  # the workers' settings allow it as a Host by default
    backend = Backend(Settings.from_env())
    try:
        new = backend.accounts.ensure_default_project()
        _catch_up_before_serving(backend)
    finally:
        backend.close()
    if new is not None:
        print(f"Created project 'default' ({new.project_id}). Its API key, shown only once:")
        print(f"  {new.secret}")
    print(f"Serving http://{args.host}:{args.port} with {args.workers} worker(s)", flush=True)
    prepare_multiprocess_metrics(args.workers)  # before the workers start: they share its counters
    uvicorn.run(
        "api.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        log_config=LOG_CONFIG,  # each worker process sets itself up the same way
        access_log=False,  # api.request_ids writes the access lines, with the request id and key id
    )
    return 0


def create_project_command(args: argparse.Namespace) -> int:
    with _backend() as backend:
        new = backend.accounts.create_project(args.name)
    if args.quiet:
        print(new.secret)
    else:
        print(f"project {new.project_id} ({args.name})")
        print(f"api key {new.key_id}: {new.secret}")
        print("The key is shown only this once; it is stored hashed.")
    return 0


def create_key_command(args: argparse.Namespace) -> int:
    with _backend() as backend:
        try:
            new = backend.accounts.create_key(args.project, args.name, args.scope, _expiry(args))
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
    with _backend() as backend:
        keys = backend.accounts.list_keys()
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
    with _backend() as backend:
        try:
            backend.accounts.revoke_key(args.key_id)
        except NotFound as error:
            print(error.detail, file=sys.stderr)
            return 1
    print(f"revoked {args.key_id}")
    return 0


def _catch_up_before_serving(backend: Backend) -> None:
    """Best effort: the server's follower keeps catching up, so a failure here must not stop a start."""
    try:
        backend.projector.catch_up()
    except Exception as error:
        print(
            f"warning: the read models could not catch up ({type(error).__name__}: {error});"
            " serving anyway, they will keep trying",
            file=sys.stderr,
        )


def rebuild_command(args: argparse.Namespace) -> int:
    """Blue/green: each view is built beside the live one, then swapped in; a failed one keeps its rows."""
    from projections.rebuild import RebuildRefused, rebuild_live, rebuildable
    from projections.scratch import Progress

    with _backend() as backend:
        runners = rebuildable(backend.projector.runners)
        if args.projection is not None:
            runners = [runner for runner in runners if runner.name == args.projection]
            if not runners:
                names = ", ".join(runner.name for runner in rebuildable(backend.projector.runners))
                print(
                    f"workflow-service: no read model {args.projection!r}; one of: {names}", file=sys.stderr
                )
                return 2
        try:
            report = rebuild_live(
                backend.workflows, runners, backend.settings.database_url, Progress("rebuild")
            )
        except RebuildRefused as error:
            print(f"workflow-service: rebuild refused: {error}", file=sys.stderr)
            return 1
    for view in report.views:
        if view.error is not None:
            cause = view.error
            print(
                f"{view.name}: not rebuilt, the old view is kept ({type(cause).__name__}: {cause})",
                file=sys.stderr,
            )
            continue
        print(f"{view.name}: rebuilt up to position {view.position} (swapped in {view.swap_seconds:.2f} s)")
        for failure in view.failures:
            print(
                f"{view.name}: skipped the event at position {failure.position} ({failure.topic}):"
                f" {failure.error_type}: {failure.error_message}",
                file=sys.stderr,
            )
    rebuilt = [view for view in report.views if view.error is None]
    skipped = sum(len(view.failures) for view in rebuilt)
    print(
        f"rebuild: {len(rebuilt)} of {len(report.views)} read models, {report.events:,} events"
        f" in {report.seconds:.1f} s ({report.rate:,.0f} events/s), {skipped} events skipped",
        file=sys.stderr,
    )
    return 0 if len(rebuilt) == len(report.views) else 1


def verify_command(_: argparse.Namespace) -> int:
    """Exit 1 when any read model differs from a fresh replay of the events."""
    from projections.scratch import Progress
    from projections.verify import verify

    with _backend() as backend:
        runners = [runner for runner in backend.projector.runners if runner.projection.tables]
        report = verify(backend.workflows, backend.database, runners, Progress("verify"))
    for line in report.lines():
        print(line)
    print(report.summary(), file=sys.stderr)
    return 1 if report.failed else 0


def _add_operation_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`export`, `import` and `replay`: moving a store, and reading a workflow's past from its events."""
    export = commands.add_parser("export", help="write the whole store as JSON Lines (content stays sealed)")
    export.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    export.set_defaults(handler=export_command)
    load = commands.add_parser("import", help="load an export into an empty store of either kind")
    load.add_argument("file", metavar="FILE")
    load.set_defaults(handler=import_command)
    replay = commands.add_parser("replay", help="a workflow as it was, replayed from the event store")
    replay.add_argument("--workflow", required=True, metavar="ID")
    moment = replay.add_mutually_exclusive_group(required=True)
    moment.add_argument("--version", type=int, metavar="N", help="as it was at content version N")
    moment.add_argument("--at", metavar="TIME", help="as it was at TIME (ISO 8601; UTC if no offset)")
    replay.add_argument("--events", action="store_true", help="print its events up to there instead")
    replay.set_defaults(handler=replay_command)


def export_command(args: argparse.Namespace) -> int:
    """To a temporary file renamed at the end, so a failed export never leaves a file that looks whole."""
    from api.transfer import Progress, export_store, summary

    progress = Progress("exported events")
    with _backend() as backend:
        if args.out is None:
            counts = export_store(backend, sys.stdout.buffer, progress)
        else:
            partial = f"{args.out}.partial"
            with open(partial, "wb") as out:
                counts = export_store(backend, out, progress)
            os.replace(partial, args.out)
    print(summary("export", counts, progress.seconds()), file=sys.stderr)
    return 0


def import_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from api.transfer import Progress, TransferError, check_master_key_for, import_store, read_header, summary

    def views_progress(position: int, head: int) -> None:
        print(f"read models: caught up to position {position:,} of {head:,}", file=sys.stderr, flush=True)

    progress = Progress("imported events")
    try:
        check_master_key_for(Settings.from_env(), read_header(Path(args.file)))
        with open(args.file, "rb") as lines, _backend() as backend:
            result = import_store(backend, lines, progress, views_progress)
    except OSError as error:
        print(f"workflow-service: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 1
    except TransferError as error:
        print(f"workflow-service: import refused: {error}", file=sys.stderr)
        return 1
    print(
        f"{summary('import', result.counts, result.store_seconds)}"
        f" (from {result.source_dialect}); read models rebuilt in {result.views_seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


def replay_command(args: argparse.Namespace) -> int:
    import json

    from api import replay

    try:
        moment = None if args.at is None else replay.parse_moment(args.at)
    except ValueError:
        print(
            f"workflow-service: --at takes an ISO 8601 time such as 2026-11-28T09:15:02Z, not {args.at!r}",
            file=sys.stderr,
        )
        return 1
    try:
        with _backend() as backend:
            if moment is None:
                steps = replay.up_to_version(backend.workflows, args.workflow, args.version)
                document = replay.document_at_version(steps)
            else:
                steps = replay.up_to_time(backend.workflows, args.workflow, moment)
                document = replay.document_at_time(steps)
    except replay.ReplayError as error:
        print(f"workflow-service: {error}", file=sys.stderr)
        return 1
    shown = replay.event_items(steps) if args.events else document
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0


class _backend:
    """A backend for one command, closed when the command ends."""

    def __enter__(self) -> Backend:
        self.backend = Backend(Settings.from_env())
        return self.backend

    def __exit__(self, *_: object) -> None:
        self.backend.close()


if __name__ == "__main__":
    sys.exit(main())

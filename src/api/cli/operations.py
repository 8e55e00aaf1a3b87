"""The operations: `rebuild`, `verify`, `export`, `import` and `replay`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from api.cli.common import Commands, command_services
from composition.settings import Settings

if TYPE_CHECKING:
    from projections.rebuild import RebuildReport


def add_commands(commands: Commands) -> None:
    rebuild = commands.add_parser(
        "rebuild", help="rebuild read models from the events, beside a live service, and swap them in"
    )
    rebuild.add_argument("--projection", metavar="NAME", help="rebuild this read model only")
    rebuild.set_defaults(handler=rebuild_command)
    commands.add_parser(
        "verify", help="replay every event in memory and compare with every read model (exit 1: differences)"
    ).set_defaults(handler=verify_command)
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


def rebuild_command(args: argparse.Namespace) -> int:
    """Blue/green: each view is built beside the live one, then swapped in; a failed one keeps its rows."""
    from projections.rebuild import RebuildRefused, rebuild_live, rebuildable
    from projections.scratch import Progress

    with command_services() as services:
        runners = rebuildable(services.projector.runners)
        if args.projection is not None:
            runners = [runner for runner in runners if runner.name == args.projection]
            if not runners:
                names = ", ".join(runner.name for runner in rebuildable(services.projector.runners))
                print(
                    f"workflow-service: no read model {args.projection!r}; one of: {names}", file=sys.stderr
                )
                return 2
        try:
            report = rebuild_live(
                services.workflows, runners, services.settings.database_url, Progress("rebuild")
            )
        except RebuildRefused as error:
            print(f"workflow-service: rebuild refused: {error}", file=sys.stderr)
            return 1
    return _print_rebuild_report(report)


def _print_rebuild_report(report: RebuildReport) -> int:
    """Each view's outcome and skipped events, then one summary line; 1 when any view was not rebuilt."""
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

    with command_services() as services:
        runners = [runner for runner in services.projector.runners if runner.projection.tables]
        report = verify(services.workflows, services.database, runners, Progress("verify"))
    for line in report.lines():
        print(line)
    print(report.summary(), file=sys.stderr)
    return 1 if report.failed else 0


def export_command(args: argparse.Namespace) -> int:
    """To a temporary file renamed at the end, so a failed export never leaves a file that looks whole."""
    from api.transfer import Progress, export_store, summary

    progress = Progress("exported events")
    with command_services() as services:
        if args.out is None:
            counts = export_store(services, sys.stdout.buffer, progress)
        else:
            partial = f"{args.out}.partial"
            with open(partial, "wb") as out:
                counts = export_store(services, out, progress)
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
        with open(args.file, "rb") as lines, command_services() as services:
            result = import_store(services, lines, progress, views_progress)
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
        with command_services() as services:
            if moment is None:
                steps = replay.up_to_version(services.workflows, args.workflow, args.version)
                document = replay.document_at_version(steps)
            else:
                steps = replay.up_to_time(services.workflows, args.workflow, moment)
                document = replay.document_at_time(steps)
    except replay.ReplayError as error:
        print(f"workflow-service: {error}", file=sys.stderr)
        return 1
    shown = replay.event_items(steps) if args.events else document
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0

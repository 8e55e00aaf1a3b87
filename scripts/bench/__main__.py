"""Run the benchmark suite on SQLite and PostgreSQL; print Markdown, optionally into BENCHMARKS.md.

    .venv/bin/python -m scripts.bench [--size smoke|medium|full] [--postgres URL] [--stores sqlite,postgres]
        [--workers N] [--workflows N] [--duration S] [--json FILE] [--write BENCHMARKS.md --label NAME]

Run from the repository root. Each store gets a fresh database (SQLite: a file in a temporary
folder; PostgreSQL: a new database on the server of --postgres, dropped afterwards).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from .figures import PLANS, Plan
from .report import markdown, write_section
from .server import MASTER_KEY
from .stores import DEFAULT_POSTGRES
from .suite import Options, StoreRun, run_store


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(PLANS), default="smoke")
    parser.add_argument("--stores", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("WFS_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a database on the PostgreSQL server to create the benchmark's own database from",
    )
    parser.add_argument("--workers", type=int, default=1, help="`serve --workers N` (PostgreSQL)")
    parser.add_argument(
        "--asgi-server",
        choices=("serve", "granian", "uvicorn"),
        default="serve",
        help="serve: the service as `workflow-service serve` runs it; granian or uvicorn: its app factory"
        " run directly under that server, to compare them (the baseline app always runs under the same)",
    )
    parser.add_argument("--workflows", type=int, help="override the size's store of workflows")
    parser.add_argument("--long-versions", type=int, help="override the size's long history")
    parser.add_argument("--duration", type=float, help="override the seconds each point is measured")
    parser.add_argument(
        "--seed-views",
        choices=("catch-up", "rebuild"),
        default="catch-up",
        help="how seeding brings the read models up to date: the projector's catch-up, or `rebuild`",
    )
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    parser.add_argument("--write", type=Path, help="put the Markdown results into this file (BENCHMARKS.md)")
    parser.add_argument("--label", help="the results section to replace in --write (default: the size)")
    return parser.parse_args(argv)


def plan_of(args: argparse.Namespace) -> Plan:
    plan = PLANS[args.size]
    changes = {"workflows": args.workflows, "long_versions": args.long_versions, "duration": args.duration}
    return dataclasses.replace(plan, **{name: value for name, value in changes.items() if value is not None})


def header(plan: Plan, argv: list[str]) -> str:
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty"],  # noqa: S607 - git from PATH, as a developer runs it
        capture_output=True,
        text=True,
        check=False,
    )
    commit = described.stdout.strip() or "?"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join([".venv/bin/python", "-m", "scripts.bench", *argv])
    return (
        f"### Run `{plan.name}` of {now}\n\n`{command}` at commit `{commit}`; {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; each point {plan.warmup:g} s warm-up"
        f" + {plan.duration:g} s measured."
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    plan = plan_of(args)
    os.environ.setdefault("WFS_MASTER_KEY", MASTER_KEY)
    options = Options(args.postgres, args.workers, args.asgi_server, args.seed_views)
    runs: list[StoreRun] = []
    for kind in [store.strip() for store in args.stores.split(",") if store.strip()]:
        with tempfile.TemporaryDirectory(prefix=f"wfs-bench-{kind}-") as folder:
            runs.append(run_store(kind, plan, Path(folder), options))
    text = markdown(runs, header(plan, argv))
    print(text)
    if args.json:
        payload = {
            run.store: {"facts": run.facts, "figures": {k: f.as_dict() for k, f in run.figures.items()}}
            for run in runs
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    if args.write:
        write_section(args.write, args.label or plan.name, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

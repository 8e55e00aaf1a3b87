"""Export, import, rebuild and verify rates on a store of `--events` events, on SQLite and PostgreSQL.

Run: .venv/bin/python scripts/bench_operations.py [--events 100000] \\
        [--postgres-url postgresql://root@127.0.0.1:5432/postgres] [--workdir DIR]

A SQLite store is filled through the domain service (real, sealed events: workflows of five events
each, a created and four updates, saved many aggregates per transaction) and its read models
caught up. Then, each as a real `workflow-service` process: `export` from SQLite, `import` into a
new PostgreSQL database, `export` from PostgreSQL, `import` into a new SQLite file. Each command's
one-line summary is printed, with the rates it measured; the import's summary also says how long
rebuilding the read models took. Last, `rebuild` and `verify` run on the SQLite store and on the
PostgreSQL one (`--skip-transfer`: filled directly instead of imported). `--postgres-url` names a
database to connect to for creating (and afterwards dropping) the benchmark's own database.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.operations import run_cli
from bench.server import MASTER_KEY
from bench.stores import fresh_postgres
from composition.services import Services
from composition.settings import Settings
from domain.workflow import Actor, Workflow
from domain.workflow_content import WorkflowChanges, WorkflowContent

EVENTS_PER_WORKFLOW = 5
SAVE_BATCH = 500


def fill(database_url: str, events: int) -> None:
    """`events` sealed events: workflows made and updated four times each, saved in batches."""
    started = time.monotonic()
    services = Services(Settings(database_url=database_url))
    try:
        project = services.accounts.create_project("bench")
        actor: Actor = {"keyId": project.key_id, "keyName": "bench key"}
        workflows = events // EVENTS_PER_WORKFLOW
        for first in range(0, workflows, SAVE_BATCH):
            batch = []
            for number in range(first, min(first + SAVE_BATCH, workflows)):
                data = {"name": f"Workflow {number}", "pipelineSteps": [{"type": "designer"}]}
                workflow = Workflow.create(project.project_id, actor, WorkflowContent.from_data(data))
                for version in range(2, EVENTS_PER_WORKFLOW + 1):
                    change = WorkflowChanges(description=f"version {version} of workflow {number}")
                    workflow.update(actor, change)
                batch.append(workflow)
            services.workflows.save(*batch)
        filled = time.monotonic()
        services.projector.catch_up()
        print(
            f"filled {workflows * EVENTS_PER_WORKFLOW:,} events in {filled - started:.1f} s;"
            f" read models caught up in {time.monotonic() - filled:.1f} s",
            flush=True,
        )
    finally:
        services.close()


def command(database_url: str, *args: str) -> str:
    """Run a `workflow-service` command; returns its last line on stderr (the summary)."""
    _, printed = run_cli(database_url, Path.cwd(), *args)
    return printed.strip().splitlines()[-1]


def rebuild_and_verify(sqlite: str, postgres: str) -> None:
    """`rebuild` (every read model, blue/green) then `verify` on each store, with their rates."""
    for store, url in (("SQLite", sqlite), ("PostgreSQL", postgres)):
        print(f"{store} rebuild: ".ljust(20), command(url, "rebuild"), flush=True)
        print(f"{store} verify: ".ljust(20), command(url, "verify"), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--postgres-url", default="postgresql://root@127.0.0.1:5432/postgres")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--skip-transfer",
        action="store_true",
        help="only rebuild and verify (PostgreSQL filled by its own fill)",
    )
    args = parser.parse_args()
    os.environ.setdefault("WFS_MASTER_KEY", MASTER_KEY)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="wfs-bench-ops-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sqlite, sqlite_again = f"sqlite:///{workdir / 'source.db'}", f"sqlite:///{workdir / 'moved.db'}"
    from_sqlite, from_postgres = workdir / "from-sqlite.jsonl", workdir / "from-postgres.jsonl"
    with fresh_postgres(args.postgres_url) as postgres:
        fill(sqlite, args.events)
        if args.skip_transfer:
            fill(postgres, args.events)
        else:
            print("SQLite export:     ", command(sqlite, "export", "--out", str(from_sqlite)), flush=True)
            print("PostgreSQL import: ", command(postgres, "import", str(from_sqlite)), flush=True)
            print("PostgreSQL export: ", command(postgres, "export", "--out", str(from_postgres)), flush=True)
            print("SQLite import:     ", command(sqlite_again, "import", str(from_postgres)), flush=True)
            print(f"export file: {from_sqlite.stat().st_size / 1e6:.1f} MB", flush=True)
        rebuild_and_verify(sqlite, postgres)
    return 0


if __name__ == "__main__":
    sys.exit(main())

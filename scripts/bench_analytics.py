"""Benchmark: analytics for a workflow with 100 runs answers as fast as for one with 100,000 runs.

Usage:
    DATABASE_URL=sqlite:///bench-analytics.db .venv/bin/python scripts/bench_analytics.py
    DATABASE_URL=postgresql://root@127.0.0.1:5432/bench .venv/bin/python scripts/bench_analytics.py
        [--small 100] [--large 100000] [--requests 300] [--reuse]

Fills one store with two workflows (runs spread over the past 90 days, generated through the
domain in batches, as scripts/demo_data.py does), brings the read models up to date, then times
GET /workflows/analytics through the real app (Litestar TestClient, in process, auth included)
for each workflow and several windows, and prints p50/p95/mean per case. --reuse skips the
generation when a previous run left the bench project in the store. On PostgreSQL it runs
VACUUM ANALYZE before timing (a bulk load leaves dead row versions autovacuum has not reached yet).
"""

from __future__ import annotations

import argparse
import logging
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from composition.settings import Settings
from demo_data import (
    WORKFLOWS,
    Events,
    create_workflow,
    first_free_run_number,
    plan_run,
    run_events,
    spread_over_days,
)
from domain.backdating import save_backdated

PROJECT = "bench-analytics"
CASES = [(30, "daily"), (90, "weekly"), (366, "monthly")]


def generate(
    services: Services, project_id: str, name: str, runs: int, rng: random.Random, batch: int
) -> str:
    """A workflow with exactly `runs` runs over the past 90 days; returns its id."""
    spec = {**WORKFLOWS[0], "name": name}
    now = datetime.now(UTC)
    workflow_id, events = create_workflow(project_id, spec, now.replace(year=now.year - 1))
    services.make_visible(save_backdated(services.workflows, events))
    moments: list[datetime] = []
    while len(moments) < runs:
        moments += spread_over_days(rng, 90, max(1.0, runs / 70), now)
    moments = sorted(moments[:runs])
    number = first_free_run_number(services, project_id)
    started = time.perf_counter()
    pending: Events = []
    for n, created in enumerate(moments):
        plan = plan_run(rng, created, now, spec["success"])
        pending += run_events(rng, project_id, workflow_id, spec["steps"], number + n, plan)
        if (n + 1) % batch == 0 or n + 1 == runs:
            save_backdated(services.workflows, pending)
            pending = []
        if (n + 1) % 10_000 == 0:
            print(f"  {name}: {n + 1} runs stored, {time.perf_counter() - started:.0f} s", flush=True)
    stored = time.perf_counter() - started
    started = time.perf_counter()
    services.projector.catch_up()
    print(
        f"  {name}: {runs} runs stored in {stored:.1f} s, read models caught up in"
        f" {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return workflow_id


def find_existing(services: Services) -> tuple[str, dict[str, str]] | None:
    with services.database.transaction(commit=False) as tx:
        row = tx.execute("SELECT project_id FROM projects WHERE name = ?", (PROJECT,)).fetchone()
    if row is None:
        return None
    project_id = row["project_id"]
    items, _ = services.summaries.page(project_id, deleted=False, after=None, limit=100)
    return project_id, {item.name: item.id for item in items}


def vacuum(url: str) -> None:
    """What autovacuum does in time: a bulk load leaves ~400,000 dead row versions in the day rows."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def time_requests(
    client: TestClient[Any], key: str, workflow_id: str, days: int, granularity: str, n: int
) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {key}"}
    params = {"id": workflow_id, "days": days, "granularity": granularity}
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        response = client.get("/api/v1/workflows/analytics", params=params, headers=headers)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.text
    return {
        "p50": statistics.median(samples),
        "p95": percentile(samples, 0.95),
        "mean": statistics.fmean(samples),
        "totalRuns": response.json()["kpis"]["totalRuns"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per case")
    parser.add_argument("--batch", type=int, default=1000, help="runs per stored batch")
    parser.add_argument("--reuse", action="store_true", help="time an existing bench project")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings.from_env()
    services = Services(settings)
    try:
        existing = find_existing(services) if args.reuse else None
        names = (f"bench-{args.small}", f"bench-{args.large}")
        if existing is not None and all(name in existing[1] for name in names):
            project_id, by_name = existing
            workflows = {name: by_name[name] for name in names}
            print(f"reusing project {project_id}")
        else:
            project_id = services.accounts.create_project(PROJECT).project_id
            rng = random.Random(args.seed)
            began = time.perf_counter()
            workflows = {
                name: generate(services, project_id, name, runs, rng, args.batch)
                for name, runs in zip(names, (args.small, args.large), strict=True)
            }
            print(f"generated in {time.perf_counter() - began:.1f} s", flush=True)
        if services.database.dialect == "postgres":
            vacuum(settings.database_url)
        key = services.accounts.create_key(project_id, "bench").secret
        print(
            f"store {settings.database_url.split('@')[-1]}; python {platform.python_version()};"
            f" {platform.machine()} {platform.system()}; TestClient in process; {args.requests} requests"
            " per case after 20 warm-up requests"
        )
        print(
            f"{'workflow':>16} {'runs':>8} {'days':>5} {'granularity':>11}"
            f" {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}"
        )
        with TestClient(create_app(services=services)) as client:
            for workflow_id in workflows.values():
                time_requests(client, key, workflow_id, 30, "daily", 20)
            for days, granularity in CASES:
                for name, workflow_id in workflows.items():
                    result = time_requests(client, key, workflow_id, days, granularity, args.requests)
                    print(
                        f"{name:>16} {int(result['totalRuns']):>8} {days:>5} {granularity:>11}"
                        f" {result['p50']:>8.2f} {result['p95']:>8.2f} {result['mean']:>8.2f}",
                        flush=True,
                    )
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

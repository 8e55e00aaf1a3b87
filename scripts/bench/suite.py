"""One store's run: seed it, serve it, measure every figure beside its baseline, then rebuild and verify."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from composition.services import Services
from composition.settings import Settings

from . import baselines, lag, scenarios
from .client import Load, build_request, closed_loop
from .figures import Figure, Plan
from .operations import operation, run_cli
from .seed import Seeded, seed
from .server import Server, serve, serve_baseline
from .stores import fresh_store


@dataclass
class StoreRun:
    """Every figure of one store, by key, and the facts around them (sizes, seeding, load, server)."""

    store: str
    figures: dict[str, Figure] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, *figures: Figure) -> None:
        for figure in figures:
            self.figures[figure.key] = figure
            shown = f"{figure.rate:,.0f} {figure.unit}" if figure.rate is not None else ""
            if figure.p50 is not None:
                shown += f" p50 {figure.p50:.2f} ms {figure.tail} {figure.p99:.2f} ms"
            log(f"  {self.store:>8} {figure.key:<20} {shown} {figure.note}")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    """How a store is served and seeded.

    `asgi_server`: `serve` (the service as `workflow-service serve` runs it), or its app factory run
    directly under `granian` or `uvicorn` (the constant-list baseline runs under the same server).
    `seed_views`: `catch-up` (the projector, in the seeding process) or `rebuild` (the CLI command).
    """

    admin_url: str
    workers: int = 1
    asgi_server: str = "serve"
    seed_views: str = "catch-up"


def run_store(kind: str, plan: Plan, workdir: Path, options: Options) -> StoreRun:
    run = StoreRun(kind)
    run.facts.update(store=kind, plan=plan.name, workflows=plan.workflows, workers=options.workers,
                     served_by=options.asgi_server, long_versions=plan.long_versions,
                     short_versions=plan.short_versions, load_before=os.getloadavg())  # fmt: skip
    with fresh_store(kind, workdir, options.admin_url) as url:
        settings = Settings(database_url=url, files_dir=workdir / "files")
        log(f"{kind}: seeding {plan.workflows:,} workflows")
        rebuild = options.seed_views == "rebuild"
        seeded = with_services(settings, lambda services: seed(services, plan, catch_up=not rebuild))
        if rebuild:
            seeded.catch_up_seconds, _ = run_cli(url, workdir, "rebuild")
        run.facts["analyze_seconds"] = analyze(url) if kind == "postgres" else 0.0
        run.add(
            seed_figure(seeded, plan, "`rebuild`" if rebuild else "catch-up", run.facts["analyze_seconds"])
        )
        with serve(url, workdir, options.workers, options.asgi_server) as server:
            measure_served(run, server, seeded, plan, workdir)
        # Right after the writes, once the server has let its connections go (max_connections is shared).
        commits = baselines.postgres_commits if kind == "postgres" else baselines.sqlite_commits
        run.add(*commits(url if kind == "postgres" else workdir, plan))
        log(f"{kind}: rebuild and verify")
        run.add(operation(url, workdir, "rebuild"), operation(url, workdir, "verify"))
        run.add(with_services(settings, baselines.library_read))
    run.facts["load_after"] = os.getloadavg()
    return run


def analyze(url: str) -> float:
    """VACUUM ANALYZE, as autovacuum would in time (this machine's PostgreSQL runs with it off):
    without statistics the planner sorts a whole project's rows for a first `list` page."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def with_services(settings: Settings, use: Callable[[Services], Any]) -> Any:
    services = Services(settings)
    try:
        return use(services)
    finally:
        services.close()


def seed_figure(seeded: Seeded, plan: Plan, how: str, analyze_seconds: float) -> Figure:
    catch_up_rate = seeded.events / seeded.catch_up_seconds
    return Figure(
        "seed",
        f"seeding {plan.workflows:,} workflows through the composition root",
        rate=plan.workflows / seeded.save_seconds,
        unit="workflows/s",
        count=seeded.events,
        note=f"{seeded.events:,} events saved in {seeded.save_seconds:.1f} s; read models made by {how}"
        f" in {seeded.catch_up_seconds:.1f} s, {catch_up_rate:,.0f} events/s"
        + (f"; VACUUM ANALYZE {analyze_seconds:.1f} s" if analyze_seconds else ""),
    )


def measure_served(run: StoreRun, server: Server, seeded: Seeded, plan: Plan, workdir: Path) -> None:
    """Everything measured over HTTP while the service runs."""
    api = scenarios.Api(server.port, seeded.key)
    run.facts.update(asgi_server=server.asgi_server(), idle_rss_mb=server.memory_mb("VmRSS"))
    scenarios.add_runs(api, seeded.short_id, plan.runs)
    seeded.runs = plan.runs
    started = time.monotonic()
    cursor, seeded.listed, first_page = scenarios.deep_cursor(api, plan.deep_walk_seconds)
    run.facts.update(deep_walk_seconds=time.monotonic() - started, listed_rows=seeded.listed)
    page_file = workdir / "list-page.json"
    page_file.write_text(json.dumps(first_page))
    how = "`workflow-service serve`" if run.facts["served_by"] == "serve" else "the app factory directly"
    run.facts["asgi_server_note"] = f"{how} on {run.facts['asgi_server']}"
    log(f"{run.store}: reads, {run.facts['asgi_server_note']}, the constant list beside them")
    with serve_baseline(run.facts["asgi_server"], page_file, run.facts["workers"]) as baseline:
        before = constant_list(baseline, plan)
        run.add(*scenarios.reads(api, seeded, plan, cursor))
        after = constant_list(baseline, plan)
        for connections in plan.read_concurrency:
            load = before[connections].merged(after[connections])
            run.add(Figure.of(f"baseline.list@{connections}", f"constant list, {connections} conn.", load))
        run.facts["baseline_peak_rss_mb"] = baseline.memory_mb("VmHWM")
    log(f"{run.store}: long histories, projection lag, writes")
    run.add(*scenarios.long_history(api, seeded, plan))
    run.add(lag.projection_lag(api, plan.lag_samples))
    run.add(*scenarios.writes(api, seeded, plan))
    note = (
        f"peaks {server.peaks()}; RSS {run.facts['idle_rss_mb']:.0f} MB idle after start; PSS"
        f" {server.memory_mb('Pss'):.0f} MB after the load (shared pages counted once);"
        f" {plan.workflows:,} workflows"
    )
    run.add(Figure("memory", "peak RSS of the server", rate=server.memory_mb("VmHWM"), unit="MB", note=note))


def constant_list(baseline: Server, plan: Plan) -> dict[int, Load]:
    """The baseline app's constant page at each read concurrency (taken before and after the reads)."""
    request = build_request("GET", "/list", port=baseline.port)
    return {
        connections: closed_loop(
            baseline.port, lambda _i, _n: request, connections, plan.warmup, plan.duration
        )
        for connections in plan.read_concurrency
    }

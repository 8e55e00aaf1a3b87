"""What a write and a `versions` page cost on a workflow with a long history, with and without snapshots.

Run: .venv/bin/python scripts/bench_history.py [--postgres postgresql://root@127.0.0.1:5432/postgres]
     [--intervals 0,20] [--long 10000] [--short 10] [--samples 40] [--slow-samples 10]

For each store and each snapshot interval (0: snapshots off, the code as it was before them), in
the same run: a fresh database; `--samples` workflows of `--short` versions and one of `--long`
versions, built quickly through the domain service; then the p50 of one `update` through the
real app in-process (HTTP via Litestar's test client, read models settled before it answers) on
each short workflow and of `--samples` updates of the long one, taken in turn (`--slow-samples`
of the long one when snapshots are off and a write replays the whole stream); and the p50 of the
first `versions` page (100 entries) of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from api.app import create_app
from bench.stores import fresh_store
from composition.services import Services
from composition.settings import Settings
from domain.snapshots import SNAPSHOT_INTERVAL_VARIABLE
from domain.workflow_content import WorkflowChanges, WorkflowContent

STEPS = [{"type": "designer", "cliId": "claude", "model": "claude-opus-4-7"}]
ACTOR = {"keyId": "bench", "keyName": "bench"}
BUILD_CHUNK = 500
"""Events stored per save while building the long workflow."""


def timed_ms(action: Callable[[int], Any], index: int) -> float:
    started = time.perf_counter()
    action(index)
    return (time.perf_counter() - started) * 1000


def interleaved_p50s(
    short: Callable[[int], Any], long: Callable[[int], Any], samples: int, long_samples: int
) -> tuple[float, float]:
    """p50 of each, their samples taken in turn, so a busy moment of the machine weighs on both alike."""
    short_ms: list[float] = []
    long_ms: list[float] = []
    for index in range(samples):
        short_ms.append(timed_ms(short, index))
        if index < long_samples:
            long_ms.append(timed_ms(long, index))
    return statistics.median(short_ms), statistics.median(long_ms)


def build_workflow(services: Services, project_id: str, versions: int) -> str:
    """A workflow with `versions` content versions, saved in chunks through the domain service."""
    service = services.workflows
    content = WorkflowContent.from_data({"name": "history", "pipelineSteps": STEPS})
    saved = service.create_workflow(ACTOR, project_id, content)
    workflow = saved.workflow
    position = saved.position
    for start in range(2, versions + 1, BUILD_CHUNK):
        for version in range(start, min(start + BUILD_CHUNK, versions + 1)):
            workflow.update(ACTOR, WorkflowChanges(description=f"version {version}"))
        position = service.save(workflow)[-1].notification.id
    services.make_visible(position)
    return str(workflow.id)


def measure(kind: str, database_url: str, interval: int, args: argparse.Namespace) -> dict[str, float]:
    os.environ[SNAPSHOT_INTERVAL_VARIABLE] = str(interval)
    workdir = Path(tempfile.mkdtemp(prefix="bench-history-"))
    services = Services(Settings(database_url=database_url, files_dir=workdir / "files", rate_limit=0))
    try:
        project = services.accounts.create_project("bench")
        built = time.perf_counter()
        short = [build_workflow(services, project.project_id, args.short) for _ in range(args.samples)]
        long = build_workflow(services, project.project_id, args.long)
        print(f"  {kind} interval={interval}: built in {time.perf_counter() - built:.1f} s", file=sys.stderr)
        with TestClient(create_app(services=services)) as client:
            headers = {"Authorization": f"Bearer {project.secret}"}

            def update(workflow_id: str, index: int) -> None:
                body = {"workflowId": workflow_id, "description": f"bench {index}"}
                response = client.post("/api/v1/workflows/update", json=body, headers=headers)
                assert response.status_code == 200, response.text

            def versions_page(workflow_id: str) -> None:
                params: dict[str, str | int] = {"id": workflow_id, "limit": 100}
                response = client.get("/api/v1/workflows/versions", params=params, headers=headers)
                assert response.status_code == 200, response.text

            long_samples = args.samples if interval else args.slow_samples
            update_short, update_long = interleaved_p50s(
                lambda i: update(short[i], i), lambda i: update(long, i), args.samples, long_samples
            )
            versions_short, versions_long = interleaved_p50s(
                lambda _: versions_page(short[0]), lambda _: versions_page(long), args.samples, args.samples
            )
            return {
                "update_short": update_short,
                "update_long": update_long,
                "versions_short": versions_short,
                "versions_long": versions_long,
            }
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", default="postgresql://root@127.0.0.1:5432/postgres")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--intervals", default="0,20", help="snapshot intervals to compare; 0 is off")
    parser.add_argument("--long", type=int, default=10_000)
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--slow-samples", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("WFS_MASTER_KEY", "0f" * 32)

    print(
        f"| store | snapshot interval | update p50, {args.short} versions"
        f" | update p50, {args.long:,} versions | ratio"
        f" | versions page (100) p50, {args.short} | versions page p50, {args.long:,} |"
    )
    print("|---|---|---|---|---|---|---|")
    workdir = Path(tempfile.mkdtemp(prefix="bench-history-"))
    for kind in args.stores.split(","):
        for interval in (int(value) for value in args.intervals.split(",")):
            with fresh_store(kind, workdir, args.postgres) as url:
                figures = measure(kind, url, interval, args)
            print(
                f"| {kind} | {interval or 'off'} | {figures['update_short']:.1f} ms"
                f" | {figures['update_long']:.1f} ms | {figures['update_long'] / figures['update_short']:.2f}"
                f" | {figures['versions_short']:.1f} ms | {figures['versions_long']:.1f} ms |",
                flush=True,
            )


if __name__ == "__main__":
    main()

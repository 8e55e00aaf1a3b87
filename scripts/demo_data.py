"""Fill a store with realistic workflows and runs over the past days, through the domain's events.

Usage:
    DATABASE_URL=sqlite:///workflow-service.db .venv/bin/python scripts/demo_data.py [--days 90]
        [--runs-per-day 8] [--project-id ID] [--seed 1]

Creates a `demo` project (printing its API key once) unless --project-id names an existing one,
then workflows created before the window and runs spread over its days: queued, running,
succeeded, failed and cancelled, with costs per model and CLI, branches, PRs, errors and links to
personas, issues and learning versions. Every change goes through the aggregates' public commands;
only the moments are backdated (domain.backdating), so the events are the ones the API would store.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol

from composition.services import Services
from composition.settings import Settings
from domain.backdating import collect_at, save_backdated
from domain.run import Run, RunNumber, run_number_claim_id
from domain.run_values import RunReport, RunRequest
from domain.workflow import Actor, Workflow
from domain.workflow_content import WorkflowContent

RUNNER: Actor = {"keyId": "demo-runner", "keyName": "demo runner"}
AUTHOR: Actor = {"keyId": "demo-author", "keyName": "demo author"}
Events = list[DomainEventProtocol[UUID]]

PRICES = {
    # model: (cliId, USD per million input tokens, USD per million output tokens)
    "claude-opus-4-7": ("claude", 15.0, 75.0),
    "claude-sonnet-4-5": ("claude", 3.0, 15.0),
    "gpt-5": ("codex", 1.25, 10.0),
    "gemini-2.5-pro": ("gemini", 1.25, 10.0),
}
WORKFLOWS: list[dict[str, Any]] = [
    {
        "name": "Release hardening",
        "description": "Design, implement and check fixes before a release.",
        "steps": [
            ("designer", "claude-opus-4-7"),
            ("implementer", "claude-sonnet-4-5"),
            ("checker", "gpt-5"),
        ],
        "success": 0.78,
        "weight": 1.0,
    },
    {
        "name": "Dependency upgrades",
        "description": "Upgrade one dependency at a time and keep the build green.",
        "steps": [("implementer", "gpt-5"), ("checker", "claude-sonnet-4-5")],
        "success": 0.86,
        "weight": 0.7,
    },
    {
        "name": "Flaky test triage",
        "description": "Reproduce, explain and fix flaky tests.",
        "steps": [("investigator", "gemini-2.5-pro"), ("implementer", "claude-opus-4-7")],
        "success": 0.58,
        "weight": 0.5,
    },
    {
        "name": "Docs refresh",
        "description": "Keep the reference docs in step with the code.",
        "steps": [("writer", "claude-sonnet-4-5")],
        "success": 0.93,
        "weight": 0.3,
    },
]
PERSONAS = [
    ("persona-security", "Security reviewer"),
    ("persona-sre", "SRE on call"),
    ("persona-newcomer", "New contributor"),
    ("persona-pm", "Product manager"),
    ("persona-a11y", "Accessibility auditor"),
]
ISSUES = [
    (f"ISS-{n}", title)
    for n, title in enumerate(
        [
            "Login times out on slow networks",
            "CSV export drops the last row",
            "Flaky test: test_checkout_retry",
            "Upgrade to Python 3.13",
            "Dark mode contrast too low",
            "Memory leak in the worker pool",
            "Webhook retries are not idempotent",
            "Search ignores diacritics",
        ],
        start=101,
    )
]
PROMPTS = [
    "Fix the flaky checkout test",
    "Upgrade the HTTP client and fix the breaking changes",
    "Make the CSV export include every row",
    "Harden the webhook retry path",
    "Document the new rate limits",
    "Reduce memory use of the worker pool",
]
ERRORS = [
    "tests failed: 3 of 412",
    "sandbox timed out after 3600000 ms",
    "merge conflict on main",
    "model refused: context window exceeded",
]


@dataclass
class RunPlan:
    """What one demo run will go through, decided up front from the random generator."""

    created: datetime
    started: datetime | None
    finished: datetime | None
    outcome: str  # queued, running, succeeded, failed, cancelled


def plan_run(rng: random.Random, created: datetime, now: datetime, success: float) -> RunPlan:
    """Queue for seconds to minutes, run for a log-normal while, end the way this workflow tends to."""
    roll = rng.random()
    queue = timedelta(seconds=rng.uniform(3, 240))
    if roll < 0.03:  # cancelled before it started
        return _clip(RunPlan(created, None, created + queue, "cancelled"), now)
    started = created + queue
    minutes = math.exp(rng.gauss(math.log(14), 0.6))
    finished = started + timedelta(minutes=minutes)
    if roll < 0.07:
        outcome = "cancelled"
        finished = started + timedelta(minutes=minutes * rng.uniform(0.1, 0.9))
    elif rng.random() < success:
        outcome = "succeeded"
    else:
        outcome = "failed"
    return _clip(RunPlan(created, started, finished, outcome), now)


def _clip(plan: RunPlan, now: datetime) -> RunPlan:
    """A run whose end (or start) is still in the future is running (or queued) now."""
    if plan.started is not None and plan.started > now:
        return RunPlan(plan.created, None, None, "queued")
    if plan.finished is not None and plan.finished > now:
        return RunPlan(plan.created, plan.started, None, "running" if plan.started else "queued")
    return plan


def cost_lines(rng: random.Random, steps: list[tuple[str, str]], share: float) -> list[dict[str, Any]]:
    """A line per step, priced from token counts; `share` < 1 for runs that stopped early."""
    lines = []
    for _, model in steps:
        cli, input_price, output_price = PRICES[model]
        input_tokens = int(rng.lognormvariate(math.log(60_000), 0.7) * share)
        output_tokens = int(rng.lognormvariate(math.log(6_000), 0.7) * share)
        cost = (input_tokens * input_price + output_tokens * output_price) / 1_000_000
        lines.append(
            {
                "model": model,
                "cliId": cli,
                "costUsd": round(cost, 6),
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
            }
        )
    return lines


def links(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """A persona or two, an issue most of the time, sometimes a learning version (names not always known)."""
    personas = rng.sample(PERSONAS, k=rng.choice([0, 1, 1, 2]))
    issues = rng.sample(ISSUES, k=1 if rng.random() < 0.7 else 0)
    learning = [(f"lv-{rng.randint(1, 12)}", None)] if rng.random() < 0.25 else []
    return {
        "personas": [{"id": i, "name": n if rng.random() < 0.8 else None} for i, n in personas],
        "issues": [{"id": i, "name": n} for i, n in issues],
        "learningVersions": [{"id": i, "name": n} for i, n in learning],
    }


def report(run: Run, **fields: Any) -> None:
    """The runner's report, given as its request body spells it."""
    run.report(RUNNER, msgspec.convert(fields, RunReport))


def run_events(
    rng: random.Random,
    project_id: str,
    workflow_id: str,
    steps: list[tuple[str, str]],
    run_number: int,
    plan: RunPlan,
) -> Events:
    """The events of one run as the API would record them, each at its planned moment."""
    request = RunRequest(prompt=rng.choice(PROMPTS), github_repo_url="https://github.com/acme/storefront")
    run = Run.start(RUNNER, project_id, (workflow_id, 1), run_number, request)
    events = collect_at(RunNumber.claim(project_id, run_number, run.id), plan.created)
    events += collect_at(run, plan.created)
    if plan.started is not None:
        report(run, status="running", branchName=f"agent/run-{run_number}", links=links(rng))
        events += collect_at(run, plan.started)
    if plan.finished is None:
        return events
    if plan.outcome == "cancelled":
        if plan.started is not None:
            report(run, status="running", costBreakdown=cost_lines(rng, steps, rng.uniform(0.1, 0.6)))
            events += collect_at(run, plan.finished - timedelta(seconds=1))
        run.cancel(AUTHOR)
    elif plan.outcome == "succeeded":
        report(
            run,
            status="succeeded",
            prUrl=f"https://github.com/acme/storefront/pull/{1000 + run_number}",
            costBreakdown=cost_lines(rng, steps, 1.0),
        )
    else:
        report(
            run,
            status="failed",
            error=rng.choice(ERRORS),
            costBreakdown=cost_lines(rng, steps, rng.uniform(0.3, 1)),
        )
    events += collect_at(run, plan.finished)
    return events


def create_workflow(project_id: str, spec: dict[str, Any], at: datetime) -> tuple[str, Events]:
    content = {
        "name": spec["name"],
        "description": spec["description"],
        "pipelineSteps": [
            {"type": kind, "cliId": PRICES[model][0], "model": model} for kind, model in spec["steps"]
        ],
        "defaultConfig": {"cliId": PRICES[spec["steps"][0][1]][0], "timeoutMs": 3_600_000},
    }
    workflow = Workflow.create(project_id, AUTHOR, WorkflowContent.from_data(content))
    return str(workflow.id), collect_at(workflow, at)


def first_free_run_number(services: Services, project_id: str) -> int:
    """Run numbers are a claimed prefix 1..N: gallop, then bisect, on the claims in the store."""

    def claimed(number: int) -> bool:
        return bool(
            services.workflows.recorder.select_events(run_number_claim_id(project_id, number), limit=1)
        )

    if not claimed(1):
        return 1
    low, high = 1, 2
    while claimed(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if claimed(middle) else (low, middle)
    return high


def spread_over_days(rng: random.Random, days: int, per_day: float, now: datetime) -> Iterator[datetime]:
    """Creation moments over the last `days` UTC days, busier on weekdays and in working hours."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        rate = per_day * (1.0 if day.weekday() < 5 else 0.35) * (0.6 + 0.8 * (days - back) / days)
        for _ in range(_poisson(rng, rate)):
            moment = day + timedelta(hours=min(23.99, max(0.0, rng.gauss(14, 3.5))))
            if moment < now:
                yield moment


def _poisson(rng: random.Random, rate: float) -> int:
    threshold, count, product = math.exp(-rate), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs-per-day", type=float, default=8.0, help="mean runs a weekday, all workflows")
    parser.add_argument("--project-id", help="add to this existing project instead of a new `demo` one")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    settings = Settings.from_env()
    services = Services(settings)
    started_at = time.perf_counter()
    try:
        if args.project_id is None:
            new = services.accounts.create_project("demo")
            project_id = new.project_id
            print(f"project {project_id} (demo); API key, shown once: {new.secret}")
        else:
            project_id = args.project_id
        now = datetime.now(UTC)
        number = first_free_run_number(services, project_id)
        counts: dict[str, int] = {}
        for spec in WORKFLOWS:
            workflow_id, events = create_workflow(project_id, spec, now - timedelta(days=args.days + 5))
            services.make_visible(save_backdated(services.workflows, events))
            batch: Events = []
            runs = 0
            in_flight = sorted(
                now - timedelta(minutes=rng.uniform(0.5, 30)) for _ in range(rng.randint(1, 3))
            )
            moments = [*spread_over_days(rng, args.days, args.runs_per_day * spec["weight"], now), *in_flight]
            for created in moments:
                plan = plan_run(rng, created, now, spec["success"])
                batch += run_events(rng, project_id, workflow_id, spec["steps"], number, plan)
                counts[plan.outcome] = counts.get(plan.outcome, 0) + 1
                number += 1
                runs += 1
                if len(batch) >= 2000:
                    save_backdated(services.workflows, batch)
                    batch = []
            save_backdated(services.workflows, batch)
            print(f"workflow {workflow_id} {spec['name']!r}: {runs} runs")
        services.projector.catch_up()
        print(f"runs by status: {dict(sorted(counts.items()))}")
        print(f"store {settings.database_url}; took {time.perf_counter() - started_at:.1f} s")
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

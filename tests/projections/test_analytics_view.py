"""Analytics and related views on both stores: after any commands, they match the runs and a rebuild."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composition.services import Services
from domain.errors import Conflict, NotFound
from domain.run import STATUSES
from domain.run_values import RunReport, RunRequest
from domain.workflow import Actor
from domain.workflow_content import WorkflowContent
from tests.support.data import STEPS
from tests.support.views import replay_from_scratch, view_rows

ALICE: Actor = {"keyId": "k1", "keyName": "alice"}

line = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["claude-opus-4-7", "gpt-5"]),
        "cliId": st.sampled_from(["claude", "codex"]),
        "costUsd": st.floats(min_value=0, max_value=5, allow_nan=False),
    }
)
links = st.fixed_dictionaries(
    {
        kind: st.lists(
            st.builds(
                lambda i, named, kind=kind: {"id": f"{kind}-{i}", "name": f"N{i}" if named else None},
                st.integers(0, 3),
                st.booleans(),
            ),
            max_size=2,
        )
        for kind in ("personas", "issues", "learningVersions")
    }
)
action = st.one_of(
    st.tuples(
        st.just("report"), st.integers(0, 3), st.sampled_from(STATUSES), st.lists(line, max_size=2), links
    ),
    st.tuples(st.just("cancel"), st.integers(0, 3), st.none(), st.none(), st.none()),
    st.tuples(st.just("start"), st.integers(0, 1), st.none(), st.none(), st.none()),
    st.tuples(st.just("erase"), st.integers(0, 1), st.none(), st.none(), st.none()),
)


def rebuilt(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    replay_from_scratch(services, "analytics", "related")
    return view_rows(services, "analytics", "related")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(action, min_size=1, max_size=12))
def test_the_views_always_agree_with_the_runs_and_a_fresh_rebuild(
    services: Services, steps: list[Any]
) -> None:
    project = services.accounts.create_project("property").project_id
    service = services.workflows
    workflows = [
        str(
            service.create_workflow(
                ALICE, project, WorkflowContent.from_data({"name": f"W{n}", "pipelineSteps": STEPS})
            ).workflow.id
        )
        for n in range(2)
    ]
    runs: list[tuple[str, str]] = []
    erased: set[str] = set()
    for kind, which, status, lines, linked in steps:
        position = None
        try:
            if kind == "start":
                saved = services.runs.start_run(ALICE, project, workflows[which], RunRequest(prompt="go"))
                runs.append((workflows[which], str(saved.run.id)))
                position = saved.position
            elif kind == "erase":
                if workflows[which] not in erased:
                    position = service.permanently_delete_workflow(ALICE, project, workflows[which]).position
                    erased.add(workflows[which])
            elif runs:
                _, run_id = runs[which % len(runs)]
                if kind == "report":
                    report = {"status": status, "costBreakdown": lines, "links": linked}
                    position = services.runs.report_run(
                        ALICE, project, run_id, msgspec.convert(report, RunReport)
                    ).position
                else:
                    position = services.runs.cancel_run(ALICE, project, run_id).position
        except (Conflict, NotFound):
            pass
        services.make_visible(position)
    services.analytics.clock = lambda: datetime.now(UTC)
    for workflow_id in workflows:
        if workflow_id in erased:
            continue
        statistics = services.analytics.run_statistics(
            workflow_id, 2, "daily", services.related.counts(workflow_id)
        )
        documents = [
            document
            for owner, run_id in runs
            if owner == workflow_id and (document := services.runs_view.get(project, run_id)) is not None
        ]
        by_status = {status: sum(d.status == status for d in documents) for status in STATUSES}
        kpis = statistics.kpis
        assert kpis.total_runs == len(documents)
        assert kpis.succeeded_runs == by_status["succeeded"]
        assert kpis.failed_runs == by_status["failed"]
        assert kpis.cancelled_runs == by_status["cancelled"]
        assert kpis.active_runs == by_status["queued"] + by_status["running"]
        assert math.isclose(kpis.total_cost_usd, sum(d.cost_usd for d in documents), abs_tol=1e-6)
        related = services.related.entities(workflow_id)
        assert statistics.related.personas == len(related.personas)
    before = view_rows(services, "analytics", "related")
    assert rebuilt(services) == before

"""The runs view on both stores: after any sequence of commands it equals a fresh rebuild from the events."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composition.services import Services
from domain.errors import Conflict, NotFound
from domain.run import FINISHED, STATUSES
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
    },
    optional={"inputTokens": st.integers(0, 10**6), "outputTokens": st.integers(0, 10**6)},
)
links = st.fixed_dictionaries(
    {
        kind: st.lists(
            st.builds(lambda i, kind=kind: {"id": f"{kind}-{i}", "name": None}, st.integers(0, 3)), max_size=2
        )
        for kind in ("personas", "issues", "learningVersions")
    }
)
action = st.one_of(
    st.tuples(st.just("report"), st.sampled_from(STATUSES), st.lists(line, max_size=2), links),
    st.tuples(st.just("cancel"), st.none(), st.none(), st.none()),
    st.tuples(st.just("start"), st.none(), st.none(), st.none()),
    st.tuples(st.just("erase"), st.none(), st.none(), st.none()),
)


def rebuilt_rows(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    replay_from_scratch(services, "runs")
    return view_rows(services, "runs")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(action, min_size=1, max_size=10))
def test_the_runs_view_always_equals_a_fresh_rebuild(services: Services, steps: list[Any]) -> None:
    project = services.accounts.create_project("property").project_id
    runs = services.runs
    workflow_id = str(
        services.workflows.create_workflow(
            ALICE, project, WorkflowContent.from_data({"name": "W", "pipelineSteps": STEPS})
        ).workflow.id
    )
    first = runs.start_run(ALICE, project, workflow_id, RunRequest(prompt="go"))
    services.make_visible(first.position)
    run_ids = [str(first.run.id)]
    erased = False
    for kind, status, lines, linked in steps:
        position = None
        try:
            if kind == "report":
                report = {"status": status, "costBreakdown": lines, "links": linked}
                position = runs.report_run(
                    ALICE, project, run_ids[-1], msgspec.convert(report, RunReport)
                ).position
            elif kind == "cancel":
                position = runs.cancel_run(ALICE, project, run_ids[-1]).position
            elif kind == "start":
                saved = runs.start_run(ALICE, project, workflow_id, RunRequest(prompt="again"))
                run_ids.append(str(saved.run.id))
                position = saved.position
            elif not erased:
                position = services.workflows.permanently_delete_workflow(
                    ALICE, project, workflow_id
                ).position
                erased = True
        except Conflict:
            assert not erased
        except NotFound:
            assert erased
        services.make_visible(position)
    for run_id in run_ids:
        document = services.runs_view.get(project, run_id)
        if erased:
            assert document is None
            continue
        assert document is not None
        assert document.status in STATUSES
        assert (document.completed_at is not None) == (document.status in FINISHED)
        assert (document.duration_ms is not None) == (document.status in FINISHED)
        assert document.cost_usd >= 0
        assert document.status == runs.get_run(project, run_id).status
    before = view_rows(services, "runs")
    assert rebuilt_rows(services) == before

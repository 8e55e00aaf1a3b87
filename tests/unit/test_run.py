"""The Run aggregate's state machine and input rules, without any I/O."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import msgspec
import pytest
from eventsourcing.utils import get_topic
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import Conflict, InvalidInput
from domain.run import FINISHED, STATUSES, TRANSITIONS, Run
from domain.run_values import CostLine, RunReport, RunRequest, RunStatus, check_https_url, ref_name_problem
from domain.workflow import Actor
from domain.workflow_content import SandboxConfig

ALICE: Actor = {"keyId": "k1", "keyName": "alice"}
LINE = {"model": "claude-opus-4-7", "cliId": "claude", "costUsd": 0.5}


def new_run(**request: Any) -> Run:
    """A run of version 3 of workflow w1, numbered 7, asked for `request` (built as is, not validated)."""
    return Run.start(ALICE, "p1", ("w1", 3), 7, RunRequest(**{"prompt": "Ship it", **request}))


def report(run: Run, status: str, **fields: Any) -> None:
    """Report as the edge would after decoding a body: `fields` keyed as clients send them."""
    run.report(ALICE, msgspec.convert({"status": status, **fields}, RunReport))


def replayed(run: Run) -> Run:
    """The run rebuilt from its events, as the repository would load it."""
    aggregate: Any = None
    for event in run.collect_events():
        aggregate = event.mutate(aggregate)
    assert isinstance(aggregate, Run)
    return aggregate


def test_start_records_everything_and_is_queued() -> None:
    run = new_run(
        github_repo_url="https://github.com/acme/app",
        branch_name="feature/x",
        config=SandboxConfig(cli_id="c"),
    )
    started = run.pending_events[0]
    assert isinstance(started, Run.Started)
    assert started.workflow_version == 3
    assert started.run_number == 7
    assert started.reference_image_ids == []
    assert started.actor == ALICE
    assert run.status == "queued"
    assert run.started_at is None
    assert run.completed_at is None


def test_the_happy_path_sets_started_and_completed_times() -> None:
    run = new_run()
    report(run, "running")
    report(run, "running", costBreakdown=[LINE])
    report(run, "succeeded", prUrl="https://github.com/acme/app/pull/1", costBreakdown=[LINE])
    assert run.status == "succeeded"
    assert run.started_at is not None
    assert run.completed_at is not None
    assert run.completed_at >= run.started_at
    assert run.pr_url == "https://github.com/acme/app/pull/1"
    assert [line.input_tokens for line in run.cost_lines] == [None, None]
    events = run.pending_events
    assert [type(e).__name__ for e in events] == ["Started", "Reported", "Reported", "Reported"]
    assert isinstance(events[2], Run.Reported)
    assert events[2].status is None
    loaded = replayed(run)
    assert (loaded.status, loaded.started_at, loaded.completed_at) == (
        "succeeded",
        run.started_at,
        run.completed_at,
    )


def test_a_queued_run_can_be_cancelled_and_never_ran() -> None:
    run = new_run()
    run.cancel(ALICE)
    assert run.status == "cancelled"
    assert run.started_at is None
    assert run.completed_at is not None


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ([], "succeeded"),
        ([], "failed"),
        (["running", "succeeded"], "running"),
        (["running", "failed"], "failed"),
        (["running", "cancelled"], "running"),
        (["running"], "queued"),
    ],
)
def test_impossible_transitions_are_conflicts_and_record_nothing(path: list[str], status: str) -> None:
    run = new_run()
    for step in path:
        report(run, step)
    before = len(run.pending_events)
    with pytest.raises(Conflict):
        report(run, status)
    assert len(run.pending_events) == before


def test_a_finished_run_cannot_be_cancelled() -> None:
    run = new_run()
    report(run, "running")
    report(run, "failed", error="boom")
    with pytest.raises(Conflict):
        run.cancel(ALICE)
    cancelled = new_run()
    cancelled.cancel(ALICE)
    with pytest.raises(Conflict):
        cancelled.cancel(ALICE)


def test_a_report_of_nothing_new_records_nothing() -> None:
    run = new_run()
    report(run, "running", branchName="main")
    before = len(run.pending_events)
    report(run, "running", branchName="main", links={"personas": [], "issues": [], "learningVersions": []})
    assert len(run.pending_events) == before


def test_links_are_recorded_once_per_run_with_all_three_kinds() -> None:
    run = new_run()
    report(run, "running", links={"personas": [{"id": "p1", "name": "Ada"}, {"id": "p1", "name": "Ada"}]})
    report(run, "running", links={"personas": [{"id": "p1"}, {"id": "p2"}], "issues": [{"id": "i1"}]})
    report(run, "running", links={"personas": [{"id": "p1", "name": "Ada"}]})
    report(run, "running", links={"personas": [{"id": "p2", "name": "Bo"}]})
    first, second, renamed = run.pending_events[1:]
    assert isinstance(first, Run.Reported)
    assert isinstance(second, Run.Reported)
    assert isinstance(renamed, Run.Reported)
    assert first.links == {"personas": [{"id": "p1", "name": "Ada"}], "issues": [], "learningVersions": []}
    assert second.links == {
        "personas": [{"id": "p2", "name": None}],
        "issues": [{"id": "i1", "name": None}],
        "learningVersions": [],
    }
    assert renamed.links["personas"] == [{"id": "p2", "name": "Bo"}]
    assert replayed(run).links["personas"] == {"p1": "Ada", "p2": "Bo"}


def test_an_unknown_status_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as error:
        new_run().report(ALICE, RunReport(status="paused"))  # type: ignore[arg-type]
    assert error.value.field == "status"


@pytest.mark.parametrize("status", ["paused", "RUNNING", "Running", "", None, 1])
def test_the_report_type_refuses_a_status_it_does_not_know(status: Any) -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.status"):
        msgspec.convert({"status": status}, RunReport)


def test_the_statuses_are_exactly_the_five_of_the_contract() -> None:
    assert [str(status) for status in RunStatus] == ["queued", "running", "succeeded", "failed", "cancelled"]
    assert tuple(RunStatus) == STATUSES


def test_events_store_plain_data_keyed_as_on_the_wire() -> None:
    run = new_run(config=SandboxConfig(cli_id="c"), reference_image_ids=["f1"])
    report(run, "running", costBreakdown=[{**LINE, "costUsd": 1}], links={"issues": [{"id": "i1"}]})
    started, reported = run.collect_events()
    assert isinstance(started, Run.Started)
    assert started.config == {
        "templateId": None,
        "cliId": "c",
        "model": None,
        "timeoutMs": None,
        "memoryMb": None,
        "cpuCount": None,
    }
    assert started.reference_image_ids == ["f1"]
    assert isinstance(reported, Run.Reported)
    assert type(reported.status) is str
    assert reported.status == "running"
    assert reported.cost_lines == [{**LINE, "costUsd": 1.0, "inputTokens": None, "outputTokens": None}]
    assert reported.links == {"personas": [], "issues": [{"id": "i1", "name": None}], "learningVersions": []}


def test_replayed_state_is_typed() -> None:
    run = new_run()
    report(run, "running", costBreakdown=[LINE])
    loaded = replayed(run)
    assert loaded.status is RunStatus.RUNNING
    assert loaded.cost_lines == [CostLine(model="claude-opus-4-7", cli_id="claude", cost_usd=0.5)]


def test_event_topics_stay_the_stored_class_paths() -> None:
    for name in ("Started", "Reported", "Cancelled"):
        assert get_topic(getattr(Run, name)) == f"domain.run:Run.{name}"


@pytest.mark.parametrize(
    "url",
    [
        "http://github.com/a/b",
        "https://",
        "https:///path",
        "github.com/a/b",
        "ftp://github.com/a",
        "https://github.com/a b",
        "https://github.com:99999/a",
        "https://github.com/\x00",
        "",
    ],
)
def test_urls_must_be_https_with_a_host(url: str) -> None:
    with pytest.raises(InvalidInput) as error:
        check_https_url(url, "githubRepoUrl")
    assert error.value.field == "githubRepoUrl"


def test_https_urls_with_a_host_are_accepted() -> None:
    assert check_https_url("https://github.com/acme/app.git", "prUrl")
    assert check_https_url("https://git.example.com:8443/acme/app", "prUrl")


BAD_REFS = [
    "",
    "@",
    "a..b",
    "a b",
    "a~b",
    "a^b",
    "a:b",
    "a?b",
    "a*b",
    "a[b",
    "a\\b",
    "a\x01b",
    "a\x7fb",
    "/a",
    "a/",
    "a//b",
    "a.",
    ".a",
    "a/.b",
    "a.lock",
    "a/b.lock/c",
    "a@{b",
    "-a",
]
GOOD_REFS = ["main", "feature/run-42", "release/v1.2.3", "a@b", "fix_#12", "ü/ñ", "a.b", "a/b.lockx", "@x"]


@pytest.mark.parametrize("name", BAD_REFS)
def test_bad_ref_names_are_refused(name: str) -> None:
    assert ref_name_problem(name) is not None
    with pytest.raises(InvalidInput) as error:
        new_run(branch_name=name)
    assert error.value.field == "branchName"


@pytest.mark.parametrize("name", GOOD_REFS)
def test_good_ref_names_are_accepted(name: str) -> None:
    assert ref_name_problem(name) is None
    assert new_run(branch_name=name).branch_name == name


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_ref_rules_agree_with_git_itself() -> None:
    for name in [*BAD_REFS, *GOOD_REFS]:
        if not name or name.startswith("-"):
            continue  # git's option parser takes these; `git branch` refuses a leading "-" on its own
        result = subprocess.run(  # noqa: S603
            ["git", "check-ref-format", "--allow-onelevel", name],  # noqa: S607
            capture_output=True,
            check=False,
        )
        assert (result.returncode == 0) == (ref_name_problem(name) is None), name


actions = st.lists(
    st.one_of(
        st.sampled_from(STATUSES).map(lambda status: ("report", status)),
        st.just(("cancel", "")),
        st.just(("cost", "")),
    ),
    max_size=12,
)


@given(actions)
def test_no_sequence_of_reports_reaches_an_impossible_state(steps: list[tuple[str, str]]) -> None:
    run = new_run()
    for kind, status in steps:
        before = (run.status, run.started_at, run.completed_at, len(run.cost_lines), run.version)
        try:
            if kind == "cancel":
                run.cancel(ALICE)
            elif kind == "cost":
                report(run, run.status, costBreakdown=[LINE])
            else:
                report(run, status)
        except Conflict:
            assert (run.status, run.started_at, run.completed_at, len(run.cost_lines), run.version) == before
            allowed = kind != "cancel" and status in TRANSITIONS[before[0]]
            assert before[0] in FINISHED or not allowed
            continue
        if before[0] in FINISHED:
            pytest.fail(f"a {before[0]} run changed")
        assert run.status in STATUSES
        assert kind == "cancel" or kind == "cost" or status == run.status
        assert (run.completed_at is not None) == (run.status in FINISHED)
        if run.started_at is not None:
            assert run.status != "queued"
    loaded = replayed(run)
    assert (loaded.status, loaded.started_at, loaded.completed_at, loaded.cost_lines) == (
        run.status,
        run.started_at,
        run.completed_at,
        run.cost_lines,
    )

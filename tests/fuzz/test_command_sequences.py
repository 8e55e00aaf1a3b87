"""Random command sequences through the real app over HTTP, on both stores (a Hypothesis state machine).

Workflows are created, changed, copied, deleted, restored and erased, runs started, reported and
cancelled, in any order, with odd text (NULs, bidi marks, astral characters), ids of the wrong kind
and ids that never existed. No answer may be a 5xx; after each sequence every read model must hold
exactly what a fresh replay of the stored events builds.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    multiple,
    rule,
    run_state_machine_as_test,
)

from composition.services import Services
from store.database import Database
from tests.support.client import Api
from tests.support.data import STEPS
from tests.support.views import rebuild_in_place

SEQUENCES = int(os.environ.get("WFS_FUZZ_SEQUENCES", "10"))
COMMANDS = int(os.environ.get("WFS_FUZZ_STEPS", "40"))
"""Sequences per store and commands per sequence; raise them locally to dig deeper."""

ODD_TEXT = st.one_of(
    st.text(max_size=24),
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            " ",
            "\u202etxt",
            "\U0001d518\U0001d52b\U0001d526",
            "\ufeff",
            "\\u0000",
            "' OR 1=1 --",
        ]
    ),
)
NAMES = st.one_of(st.text(min_size=1, max_size=40).filter(str.strip), ODD_TEXT)
UNKNOWN_IDS = st.one_of(
    st.uuids().map(str), st.sampled_from(["", "\x00", "run_\x00", "../etc", "1e309", "v²"]), ODD_TEXT
)
STATUSES = st.sampled_from(["running", "succeeded", "failed", "cancelled", "queued", "bogus\x00"])
COST_LINES = st.lists(
    st.fixed_dictionaries(
        {
            "model": ODD_TEXT,
            "cliId": st.sampled_from(["claude", "codex", "\x00"]),
            "costUsd": st.floats(0, 10),
        }
    ),
    max_size=2,
)
LINKS = st.fixed_dictionaries(
    {}, optional={"personas": st.lists(st.fixed_dictionaries({"id": ODD_TEXT, "name": ODD_TEXT}), max_size=2)}
)


def assert_no_5xx(response: Any, method: str, path: str, sent: Any) -> None:
    assert response.status_code < 500, f"{method} {path} {sent!r} -> {response.status_code} {response.text}"


class CommandSequences(RuleBasedStateMachine):
    """Commands in any order through one project's key; each sequence ends with a replay check."""

    api: Api
    services: Services

    workflows = Bundle("workflows")
    runs = Bundle("runs")

    def post(self, path: str, body: Any) -> Any:
        response = self.api.post(path, body)
        assert_no_5xx(response, "POST", path, body)
        return response

    def get(self, path: str, **params: Any) -> Any:
        response = self.api.get(path, **params)
        assert_no_5xx(response, "GET", path, params)
        return response

    def created(self, response: Any) -> MultipleResults[str]:
        """The new id for the bundle, or nothing when the command was refused."""
        return multiple(str(response.json()["id"])) if response.status_code == 201 else multiple()

    @initialize(target=workflows)
    def first_workflow(self) -> MultipleResults[str]:
        return self.created(self.post("/workflows/create", {"name": "First", "pipelineSteps": STEPS}))

    @rule(target=workflows, name=NAMES, description=st.none() | ODD_TEXT)
    def create(self, name: str, description: str | None) -> MultipleResults[str]:
        body = {"name": name, "description": description, "pipelineSteps": STEPS}
        return self.created(self.post("/workflows/create", body))

    @rule(
        workflow=workflows | workflows | runs | UNKNOWN_IDS,
        description=ODD_TEXT,
        expected=st.none() | st.integers(0, 5),
    )
    def update(self, workflow: str, description: str, expected: int | None) -> None:
        body: dict[str, Any] = {"workflowId": workflow, "description": description}
        if expected is not None:
            body["expectedVersion"] = expected
        self.post("/workflows/update", body)

    @rule(workflow=workflows | workflows | runs | UNKNOWN_IDS, name=NAMES)
    def rename(self, workflow: str, name: str) -> None:
        self.post("/workflows/rename", {"workflowId": workflow, "name": name})

    @rule(workflow=workflows | runs, version=st.integers(0, 4) | st.just("²"))
    def revert(self, workflow: str, version: int | str) -> None:
        self.post(
            "/workflows/versions/revert", {"workflowId": workflow, "versionId": f"{workflow}.v{version}"}
        )

    @rule(target=workflows, workflow=workflows | workflows | runs | UNKNOWN_IDS, name=st.none() | NAMES)
    def duplicate(self, workflow: str, name: str | None) -> MultipleResults[str]:
        body = {"workflowId": workflow} if name is None else {"workflowId": workflow, "name": name}
        return self.created(self.post("/workflows/duplicate", body))

    @rule(workflow=workflows | workflows | runs | UNKNOWN_IDS)
    def delete(self, workflow: str) -> None:
        self.post("/workflows/delete", {"workflowId": workflow})

    @rule(workflow=workflows | workflows | runs | UNKNOWN_IDS)
    def restore(self, workflow: str) -> None:
        self.post("/workflows/restore", {"workflowId": workflow})

    @rule(workflow=workflows | workflows | runs | UNKNOWN_IDS)
    def permanently_delete(self, workflow: str) -> None:
        self.post("/workflows/permanent-delete", {"workflowId": workflow})

    @rule(ids=st.lists(workflows | workflows | runs | UNKNOWN_IDS, min_size=1, max_size=4))
    def bulk_delete(self, ids: list[str]) -> None:
        self.post("/workflows/bulk-delete", {"workflowIds": ids})

    @rule(target=runs, workflow=workflows | workflows | runs | UNKNOWN_IDS, prompt=ODD_TEXT.filter(bool))
    def start_run(self, workflow: str, prompt: str) -> MultipleResults[str]:
        return self.created(self.post("/runs/start", {"workflowId": workflow, "prompt": prompt}))

    @rule(
        run=runs | runs | workflows | UNKNOWN_IDS,
        status=STATUSES,
        error=st.none() | ODD_TEXT,
        cost=COST_LINES,
        links=LINKS,
    )
    def report(
        self, run: str, status: str, error: str | None, cost: list[Any], links: dict[str, Any]
    ) -> None:
        body: dict[str, Any] = {"runId": run, "status": status, "costBreakdown": cost, "links": links}
        if error is not None:
            body["error"] = error
        self.post("/runs/report", body)

    @rule(run=runs | runs | workflows | UNKNOWN_IDS)
    def cancel(self, run: str) -> None:
        self.post("/runs/cancel", {"runId": run})

    @rule(
        some_id=workflows | workflows | runs | UNKNOWN_IDS,
        path=st.sampled_from(
            [
                "/workflows/get",
                "/workflows/versions",
                "/workflows/runs",
                "/workflows/analytics",
                "/workflows/related",
                "/workflows/history",
                "/runs/get",
            ]
        ),
    )
    def read(self, some_id: str, path: str) -> None:
        self.get(path, id=some_id)

    @rule()
    def read_lists(self) -> None:
        self.get("/workflows/list")
        self.get("/workflows/list", deleted="true")
        self.get("/events", limit=100)

    def teardown(self) -> None:
        count, skipped = self.services.projector.failures()
        assert count == 0, f"read models skipped {count} stored events: {skipped}"
        live = dump_views(self.services)
        replayed, skipped_on_replay = replay_views(self.services)
        assert not skipped_on_replay, f"a replay skipped stored events: {skipped_on_replay}"
        differences = compare(live, replayed)
        assert not differences, "read models differ from a fresh replay:\n" + "\n".join(differences)


def dump_views(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read model's tables, in a stable order."""
    return {
        table: rows_of(services.database, table)
        for runner in services.projector.runners
        for table in runner.projection.tables
    }


def rows_of(database: Database, table: str) -> list[tuple[Any, ...]]:
    with database.transaction(commit=False) as tx:
        rows = tx.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - names from the projections
    return sorted((tuple(row.values()) if isinstance(row, dict) else tuple(row) for row in rows), key=repr)


def compare(live: dict[str, list[tuple[Any, ...]]], replayed: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Per table, the rows only the live view has and the rows only the replay has."""
    differences = []
    for table, rows in live.items():
        only_live = [row for row in rows if row not in replayed[table]]
        only_replay = [row for row in replayed[table] if row not in rows]
        if only_live or only_replay:
            differences.append(f"{table}: live only {only_live[:3]!r}; replay only {only_replay[:3]!r}")
    return differences


def replay_views(services: Services) -> tuple[dict[str, list[tuple[Any, ...]]], list[Any]]:
    """Every read model emptied and built again from the stored events alone, as `rebuild` does.

    Each view is rebuilt in one transaction, so the app's follower never sees it half-built.
    """
    skipped: list[Any] = []
    for runner in services.projector.runners:
        skipped += rebuild_in_place(runner)[1]
    return dump_views(services), skipped


@pytest.mark.parametrize("_", [None], ids=["sequences"])
def test_random_command_sequences_never_5xx_and_views_equal_a_replay(
    _: None, api: Api, services: Services, count_request: Any
) -> None:
    counted = CountingApi(api, count_request)

    class Machine(CommandSequences):
        pass

    Machine.api = counted
    Machine.services = services
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=SEQUENCES,
            stateful_step_count=COMMANDS,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )


class CountingApi(Api):
    """The project's client, counting the requests the fuzzer sends."""

    def __init__(self, api: Api, count: Any) -> None:
        super().__init__(api.client, api.key, api.project_id)
        self._count = count

    def get(self, path: str, **params: Any) -> Any:
        self._count()
        return super().get(path, **params)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        self._count()
        return super().post(path, body, headers)

"""Group commit: saves that queue behind a commit in flight share the next insert, and one clash fails alone.

The store is held by another connection (PostgreSQL: the events table's lock; SQLite: the write
lock) while the first save waits for it, so the saves started meanwhile are sure to queue.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from composition.services import Services
from domain.workflow import Workflow
from domain.workflow_content import WorkflowChanges, WorkflowContent
from store.database import StoreConfig
from tests.support.data import ACTOR, STEPS

QUEUED = 8
QUEUE_WAIT_SECONDS = 1.5
"""Under SQLite's 2 s busy wait, so the held save does not give up before the others queue."""


def new_workflow(name: str) -> Workflow:
    return Workflow.create("p", ACTOR, WorkflowContent.from_data({"name": name, "pipelineSteps": STEPS}))


@contextmanager
def store_held(services: Services) -> Iterator[None]:
    """Another connection holds what an insert needs until the block ends."""
    config = StoreConfig.from_url(services.settings.database_url)
    if config.dialect == "postgres":
        with psycopg.connect(services.settings.database_url) as connection:
            connection.execute("LOCK TABLE workflows_events IN EXCLUSIVE MODE")
            yield
            connection.rollback()
        return
    connection = sqlite3.connect(config.env["SQLITE_DBNAME"], isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + QUEUE_WAIT_SECONDS / 2
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.002)
    assert condition()


def saved_behind_a_held_store(services: Services, saves: list[Callable[[], Any]]) -> list[Future[Any]]:
    """Start one save while the store is held, then `saves` once it waits; release when all queued."""
    group = services.workflows.events.group  # type: ignore[attr-defined]
    pool = ThreadPoolExecutor(max_workers=len(saves) + 1)
    with store_held(services):
        first = pool.submit(services.workflows.save, new_workflow("first"))
        wait_for(lambda: group.in_flight == 1)
        queued = [pool.submit(save) for save in saves]
        wait_for(lambda: group.waiting == len(saves))
    pool.shutdown(wait=True)
    assert first.result()
    return queued


def test_saves_queued_behind_a_commit_share_one_insert(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = services.workflows.recorder
    inserts: list[int] = []
    real_insert = recorder.insert_events

    def counted(events: Any, **kwargs: Any) -> Any:
        inserts.append(len(events))
        return real_insert(events, **kwargs)

    monkeypatch.setattr(recorder, "insert_events", counted)
    workflows = [new_workflow(f"queued {n}") for n in range(QUEUED)]
    queued = saved_behind_a_held_store(
        services, [lambda w=workflow: services.workflows.save(w) for workflow in workflows]
    )

    assert inserts == [1, QUEUED]
    positions = [recording.notification.id for future in queued for recording in future.result()]
    assert len(set(positions)) == QUEUED
    for workflow, future in zip(workflows, queued, strict=True):
        (recording,) = future.result()
        assert recording.domain_event.originator_id == workflow.id
        (stored,) = services.workflows.recorder.select_notifications(start=recording.notification.id, limit=1)
        assert stored.originator_id == workflow.id
        assert services.workflows.repository.get(workflow.id).content.name == workflow.content.name


def test_a_clash_in_a_shared_insert_fails_that_save_alone(services: Services) -> None:
    original = new_workflow("contested")
    services.workflows.save(original)
    first, second = (services.workflows.repository.get(original.id) for _ in range(2))
    first.update(ACTOR, WorkflowChanges.from_data({"description": "first"}))
    second.update(ACTOR, WorkflowChanges.from_data({"description": "second"}))
    others = [new_workflow(f"bystander {n}") for n in range(QUEUED - 2)]
    saves = [lambda w=w: services.workflows.save(w) for w in (*others, first, second)]

    outcomes = saved_behind_a_held_store(services, saves)

    errors = [future.exception() for future in outcomes]
    assert [type(error) for error in errors[:-2]] == [type(None)] * len(others)
    assert sorted(type(error).__name__ for error in errors[-2:]) == ["IntegrityError", "NoneType"]
    assert isinstance(errors[-1] or errors[-2], IntegrityError)
    for other in others:
        assert services.workflows.repository.get(other.id).version == 1
    assert services.workflows.repository.get(original.id).version == 2


def test_many_concurrent_writers_each_get_their_own_events(services: Services) -> None:
    """No lock held: however the saves happen to group, each stores its events and learns their positions."""
    workflows = [new_workflow(f"writer {n}") for n in range(32)]
    lock = threading.Lock()
    positions: list[int] = []

    def save(workflow: Workflow) -> None:
        workflow.update(ACTOR, WorkflowChanges.from_data({"description": "changed"}))
        recordings = services.workflows.save(workflow)
        with lock:
            positions.extend(recording.notification.id for recording in recordings)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(save, workflows))

    assert len(set(positions)) == 2 * len(workflows)
    for workflow in workflows:
        loaded = services.workflows.repository.get(workflow.id)
        assert (loaded.version, loaded.content.description) == (2, "changed")

"""Baselines measured in the same run: a raw one-row commit, and reading events with the library alone."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.utils import resolve_topic

from .client import Load, Window
from .figures import Figure, Plan

READ_PAGE = 1000
CONNECT_ATTEMPTS = 25


def _commit_loop(connect: Callable[[], Any], insert: str, connections: int, plan: Plan) -> Load:
    """`connections` threads, each on its own connection, inserting one row and committing, in a loop.

    A thread that cannot connect (PostgreSQL's max_connections is shared with everything else on the
    machine) does not take part; `Load.connections` says how many did.
    """
    load = Load(0, plan.duration)
    lock = threading.Lock()
    window = Window(plan.warmup, plan.duration)

    def worker() -> None:
        connection = _connect(connect)
        if connection is None:
            return
        with lock:
            load.connections += 1
        try:
            while window.open(load.count):
                sent = time.perf_counter()
                connection.execute(insert, ("x" * 100,))
                connection.commit()
                if sent >= window.measure_from:
                    with lock:
                        load.latencies_ms.append((time.perf_counter() - sent) * 1000)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = window.seconds
    return load


def _connect(connect: Callable[[], Any]) -> Any:
    for _ in range(CONNECT_ATTEMPTS):
        try:
            return connect()
        except psycopg.OperationalError:
            time.sleep(0.2)
    return None


def commit_figure(connections: int, load: Load, what: str) -> Figure:
    note = "" if load.connections == connections else f"only {load.connections} threads could connect"
    return Figure.of(f"baseline.commit@{connections}", what, load, note=note)


def postgres_commits(database_url: str | Path, plan: Plan) -> list[Figure]:
    """INSERT + COMMIT of one row through psycopg, at each write concurrency (threads)."""
    database_url = str(database_url)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS bench_commit (id BIGSERIAL PRIMARY KEY, payload TEXT)")
    figures = []
    for connections in plan.write_concurrency:
        load = _commit_loop(
            lambda: psycopg.connect(database_url),
            "INSERT INTO bench_commit (payload) VALUES (%s)",
            connections,
            plan,
        )
        figures.append(commit_figure(connections, load, f"psycopg INSERT+COMMIT, {connections} thr."))
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("DROP TABLE bench_commit")
    return figures


def sqlite_commits(folder: str | Path, plan: Plan) -> list[Figure]:
    """INSERT + COMMIT of one row through sqlite3 in WAL mode (as the store's library sets it)."""
    path = Path(folder) / "bench-commit.db"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER PRIMARY KEY, payload TEXT)")

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(path, timeout=30, check_same_thread=False)

    figures = []
    for connections in plan.write_concurrency:
        load = _commit_loop(connect, "INSERT INTO bench_commit (payload) VALUES (?)", connections, plan)
        figures.append(commit_figure(connections, load, f"sqlite3 INSERT+COMMIT (WAL), {connections} thr."))
    path.unlink(missing_ok=True)
    return figures


def library_read(services: Any) -> Figure:
    """Every stored event read in pages through the library's recorder and decoded by its transcoder
    (topic resolved, state decoded; no unsealing): the floor under rebuild and verify."""
    recorder = services.workflows.recorder
    transcoder = services.workflows.mapper.transcoder
    started = time.perf_counter()
    count, start = 0, 1
    while True:
        page = recorder.select_notifications(start=start, limit=READ_PAGE)
        for notification in page:
            resolve_topic(notification.topic)
            transcoder.decode(notification.state)
        count += len(page)
        if len(page) < READ_PAGE:
            break
        start = page[-1].id + 1
    seconds = time.perf_counter() - started
    what = "the library reading + decoding every event"
    return Figure("baseline.read", what, rate=count / seconds, unit="events/s", count=count)

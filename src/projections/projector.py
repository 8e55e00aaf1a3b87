"""All of a deployment's projections, driven together, and the thread that keeps them following the store."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.application import Application

from projections.catch_up import CatchUp
from projections.failures import ProjectionFailure, read_failures
from projections.read_model import ReadModel
from projections.tracked_view import TrackedView
from store.database import Database

log = logging.getLogger("projections.projector")


class Projector:
    """All of a deployment's projections, driven together."""

    def __init__(
        self, application: Application[UUID], database: Database, projections: Sequence[ReadModel]
    ) -> None:
        self.application = application
        self.database = database
        self.runners = [TrackedView(application, database, p) for p in projections]
        self._catch_up = CatchUp(application, database, self.runners)
        self.leading = False
        """Whether this process applies new events for every process (set by `ProjectionLeadership`)."""

    def create_tables(self) -> None:
        for runner in self.runners:
            runner.create_tables()

    def failures(self, limit: int = 20) -> tuple[int, list[ProjectionFailure]]:
        """How many events some view skipped because it could not apply them, and the first few."""
        return read_failures(self.database, limit)

    def catch_up(self, up_to: int | None = None) -> None:
        """Return once every view has applied every event up to `up_to` (default: the head)."""
        self._catch_up.run(up_to)

    def positions(self) -> dict[str, int]:
        return self._catch_up.positions()

    def applied(self) -> int:
        """The position every view has reached."""
        return min(self.positions().values(), default=0)


class BackgroundCatchUp:
    """SQLite (one process): keeps the read models following events written by commands (imports)."""

    def __init__(self, projector: Projector, interval: float = 1.0) -> None:
        self.projector = projector
        self.interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="projection-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.projector.catch_up()
            except Exception:
                log.exception("catching up the read models failed; retrying")

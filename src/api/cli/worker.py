"""The app each `serve` worker process builds, and how that process ends once its lifespan has.

granian (2.8.9) runs each worker in a spawned process. On SIGTERM, granian's stop thread takes the
GIL back after dropping its runtime; if the worker's interpreter is finalizing by then, CPython
ends that thread with pthread_exit, whose unwinding through Rust aborts the process ("panic in a
function that cannot unwind", about 1 stop in 10 on a loaded machine, printed among the JSON logs).
So a worker whose lifespan has ended exits at `atexit`, before finalization starts, as a forked
worker would (`os._exit`), leaving that thread nothing to race with.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys

from litestar import Litestar

from api.app import create_app
from composition.services import Services
from composition.settings import Settings


def worker_app() -> Litestar:
    """The app of a server process (settings from the environment, tables already made by `serve`),
    whose process exits without finalizing once its shutdown is done."""
    app = create_app(services=Services(Settings.from_env(), create_tables=False))
    app.on_shutdown.append(exit_without_finalizing)
    return app


def exit_without_finalizing(_: Litestar) -> None:
    """The last shutdown hook (Litestar runs it even after an earlier one failed, and logs that failure;
    granian, which stopped the worker, does not read its exit status)."""
    atexit.register(_exit_now)  # registered last, so it runs first: before the earlier exit handlers


def _exit_now() -> None:
    """Flush what the worker wrote, then end it (status 0: granian stopped it and does not read it)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

"""`serve`: create the default project if there is none, catch the views up, and run the HTTP server.

The server is granian, chosen by measurement over uvicorn (see README, Operations/scale-out): on
this service's routes it answered more requests at 16 connections with one worker, and uvicorn's
multi-worker mode stalled each keep-alive request by ~40 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys

from api.cli.common import Commands
from composition.services import Services
from composition.settings import BIND_HOST_VARIABLE, Settings
from store.database import StoreConfig

APP_FACTORY = "api.cli.worker:worker_app"


def add_commands(commands: Commands) -> None:
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to bind; also a Host that upload URLs may be built on (see WFS_ALLOWED_HOSTS)",
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes; more than one needs PostgreSQL (one of them leads the projections)",
    )
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    from api.logs import configure_logging
    from api.metrics import prepare_multiprocess_metrics

    configure_logging()  # JSON lines from here on, the catch-up's included
    settings = Settings.from_env()
    refusal = _refuse_workers(args.workers, settings.database_url)
    if refusal:
        print(f"workflow-service: {refusal}", file=sys.stderr)
        return 2
    os.environ[BIND_HOST_VARIABLE] = args.host  # the workers' settings allow it as a Host by default
    services = Services(settings)
    try:
        new = services.accounts.ensure_default_project()
        _catch_up_before_serving(services)
    finally:
        services.close()
    if new is not None:
        print(f"Created project 'default' ({new.project_id}). Its API key, shown only once:")
        print(f"  {new.secret}")
    print(f"Serving http://{args.host}:{args.port} with {args.workers} worker(s)", flush=True)
    prepare_multiprocess_metrics(args.workers)  # before the workers start: they share its counters
    run_server(host=args.host, port=args.port, workers=args.workers)
    return 0


def _refuse_workers(workers: int, database_url: str) -> str | None:
    """Why `--workers` cannot be served on this store, if it cannot."""
    if workers < 1:
        return f"--workers must be at least 1, not {workers}"
    if workers > 1 and StoreConfig.from_url(database_url).dialect == "sqlite":
        return (
            f"--workers {workers} needs PostgreSQL (DATABASE_URL=postgresql://...): the embedded"
            " SQLite store is served by one process; run `serve` without --workers"
        )
    return None


def run_server(host: str, port: int, workers: int) -> None:
    """granian, with a worker process per `workers`, each building the app with `worker_app`."""
    from granian.constants import Interfaces
    from granian.server import Server

    from api.logs import LOG_CONFIG

    # Each worker starts afresh, as uvicorn's do, rather than a fork of this process: it imports the
    # metrics after PROMETHEUS_MULTIPROC_DIR is set, and inherits no state of the start-up's services.
    multiprocessing.set_start_method("spawn", force=True)
    Server(
        APP_FACTORY,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=workers,
        respawn_failed_workers=True,  # a worker that dies (killed, out of memory) is replaced
        log_dictconfig=LOG_CONFIG,  # each worker process sets itself up the same way
        log_access=False,  # api.request_ids writes the access lines, with the request id and key id
    ).serve()


def _catch_up_before_serving(services: Services) -> None:
    """Best effort: the server's follower keeps catching up, so a failure here must not stop a start."""
    try:
        services.projector.catch_up()
    except Exception as error:
        print(
            f"warning: the read models could not catch up ({type(error).__name__}: {error});"
            " serving anyway, they will keep trying",
            file=sys.stderr,
        )

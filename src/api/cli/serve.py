"""`serve`: create the default project if there is none, catch the views up, and run the HTTP server."""

from __future__ import annotations

import argparse
import os
import sys

from api.cli.common import Commands
from composition.services import Services
from composition.settings import BIND_HOST_VARIABLE, Settings


def add_commands(commands: Commands) -> None:
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to bind; also a Host that upload URLs may be built on (see WFS_ALLOWED_HOSTS)",
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="server processes (PostgreSQL)")
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from api.logs import LOG_CONFIG, configure_logging
    from api.metrics import prepare_multiprocess_metrics

    configure_logging()  # JSON lines from here on, the catch-up's included
    os.environ[BIND_HOST_VARIABLE] = args.host  # the workers' settings allow it as a Host by default
    backend = Services(Settings.from_env())
    try:
        new = backend.accounts.ensure_default_project()
        _catch_up_before_serving(backend)
    finally:
        backend.close()
    if new is not None:
        print(f"Created project 'default' ({new.project_id}). Its API key, shown only once:")
        print(f"  {new.secret}")
    print(f"Serving http://{args.host}:{args.port} with {args.workers} worker(s)", flush=True)
    prepare_multiprocess_metrics(args.workers)  # before the workers start: they share its counters
    uvicorn.run(
        "api.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        log_config=LOG_CONFIG,  # each worker process sets itself up the same way
        access_log=False,  # api.request_ids writes the access lines, with the request id and key id
    )
    return 0


def _catch_up_before_serving(backend: Services) -> None:
    """Best effort: the server's follower keeps catching up, so a failure here must not stop a start."""
    try:
        backend.projector.catch_up()
    except Exception as error:
        print(
            f"warning: the read models could not catch up ({type(error).__name__}: {error});"
            " serving anyway, they will keep trying",
            file=sys.stderr,
        )

"""The `workflow-service` command: serve the API and administer projects and keys."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from api.backend import Backend
from api.settings import Settings
from domain.errors import NotFound


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    code: int = handler(args)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workflow-service",
        description="Event-sourced workflow service. The store is chosen by DATABASE_URL.",
    )
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="server processes (PostgreSQL)")
    serve.set_defaults(handler=serve_command)

    projects = commands.add_parser("projects", help="projects").add_subparsers(title="projects")
    create_project = projects.add_parser("create", help="create a project and an API key for it")
    create_project.add_argument("name")
    create_project.add_argument("--quiet", action="store_true", help="print the key alone")
    create_project.set_defaults(handler=create_project_command)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(title="keys")
    create_key = keys.add_parser("create", help="create an API key for a project")
    create_key.add_argument("--project", required=True, help="the project's id")
    create_key.add_argument("--name", default="api key", help="what the audit log calls the key")
    create_key.set_defaults(handler=create_key_command)
    keys.add_parser("list", help="list API keys (never their secrets)").set_defaults(
        handler=list_keys_command
    )
    revoke = keys.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=revoke_key_command)

    commands.add_parser("rebuild", help="rebuild every read model from the events").set_defaults(
        handler=rebuild_command
    )
    return parser


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    backend = Backend(Settings.from_env())
    try:
        new = backend.accounts.ensure_default_project()
        backend.projector.catch_up()
    finally:
        backend.close()
    if new is not None:
        print(f"Created project 'default' ({new.project_id}). Its API key, shown only once:")
        print(f"  {new.secret}")
    print(f"Serving http://{args.host}:{args.port} with {args.workers} worker(s)", flush=True)
    uvicorn.run(
        "api.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
    )
    return 0


def create_project_command(args: argparse.Namespace) -> int:
    with _backend() as backend:
        new = backend.accounts.create_project(args.name)
    if args.quiet:
        print(new.secret)
    else:
        print(f"project {new.project_id} ({args.name})")
        print(f"api key {new.key_id}: {new.secret}")
        print("The key is shown only this once; it is stored hashed.")
    return 0


def create_key_command(args: argparse.Namespace) -> int:
    with _backend() as backend:
        try:
            new = backend.accounts.create_key(args.project, args.name)
        except NotFound as error:
            print(error.detail, file=sys.stderr)
            return 1
    print(f"api key {new.key_id}: {new.secret}")
    return 0


def list_keys_command(_: argparse.Namespace) -> int:
    with _backend() as backend:
        for key in backend.accounts.list_keys():
            state = f"revoked {key.revoked_at}" if key.revoked_at else "live"
            print(f"{key.key_id}\t{key.project_id}\t{key.name}\t{key.created_at}\t{state}")
    return 0


def revoke_key_command(args: argparse.Namespace) -> int:
    with _backend() as backend:
        try:
            backend.accounts.revoke_key(args.key_id)
        except NotFound as error:
            print(error.detail, file=sys.stderr)
            return 1
    print(f"revoked {args.key_id}")
    return 0


def rebuild_command(_: argparse.Namespace) -> int:
    with _backend() as backend:
        for runner in backend.projector.runners:
            runner.drop_tables()
            runner.create_tables()
            position = runner.catch_up()
            print(f"{runner.name}: rebuilt up to position {position}")
    return 0


class _backend:
    """A backend for one command, closed when the command ends."""

    def __enter__(self) -> Backend:
        self.backend = Backend(Settings.from_env())
        return self.backend

    def __exit__(self, *_: object) -> None:
        self.backend.close()


if __name__ == "__main__":
    sys.exit(main())

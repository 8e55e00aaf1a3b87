"""Fresh, throw-away stores for a benchmark: a SQLite file in a folder, or a new PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

DEFAULT_POSTGRES = "postgresql://root@127.0.0.1:5432/postgres"


def database_url_beside(admin_url: str, name: str) -> str:
    """The URL of database `name` on the server `admin_url` points at."""
    return admin_url.rsplit("/", 1)[0] + "/" + name


@contextmanager
def fresh_postgres(admin_url: str, prefix: str = "wfs_bench", keep: bool = False) -> Iterator[str]:
    """A new, empty database on the server of `admin_url`, dropped afterwards unless `keep`."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url_beside(admin_url, name)
    finally:
        if not keep:
            with psycopg.connect(admin_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_store(
    kind: str, workdir: Path, admin_url: str = DEFAULT_POSTGRES, keep: bool = False
) -> Iterator[str]:
    """A DATABASE_URL for a new store: `sqlite` (a file in `workdir`) or `postgres` (on `admin_url`)."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
    elif kind == "postgres":
        with fresh_postgres(admin_url, keep=keep) as url:
            yield url
    else:
        raise ValueError(f"a store is sqlite or postgres, not {kind!r}")

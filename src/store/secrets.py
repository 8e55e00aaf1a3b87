"""Secrets the deployment makes once and every process shares through the store (the cursor-signing key)."""

from __future__ import annotations

import secrets

from store.database import Database

SECRETS_DDL = ("CREATE TABLE IF NOT EXISTS service_secrets (name TEXT PRIMARY KEY, secret TEXT NOT NULL)",)


def cursor_secret(database: Database) -> bytes:
    """The deployment's cursor-signing secret, shared by every process through the store."""
    select = "SELECT secret FROM service_secrets WHERE name = 'cursor'"
    with database.transaction(commit=False) as tx:
        row = tx.execute(select).fetchone()
    if row is None:  # the first start: one process makes it, the others read it
        with database.transaction() as tx:
            tx.execute(
                "INSERT INTO service_secrets (name, secret) VALUES ('cursor', ?)"
                " ON CONFLICT (name) DO NOTHING",
                (secrets.token_hex(32),),
            )
            row = tx.execute(select).fetchone()
    return bytes.fromhex(row["secret"])

"""The id of the request a command runs for, so every event it stores can name it.

The API sets it for each request (`api.request_ids`); the store's mapper reads it. Anything that
runs outside a request (CLI commands, scripts, the read-model follower) leaves it unset: None.
"""

from __future__ import annotations

from contextvars import ContextVar

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
"""Copied into worker threads by `anyio.to_thread.run_sync`, so sync handlers see their request's id."""

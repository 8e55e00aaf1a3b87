"""What an `Idempotency-Key` is: the header, its syntax, and the routes that take one."""

from __future__ import annotations

import json

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
KEY_PATTERN = "^[!-~](?:[ -~]*[!-~])?$"
API_PREFIX = "/api/v1/"
"""Only API-keyed routes: the keyless upload route already has a single-use URL as its key."""


def valid_key(values: list[bytes]) -> str | None:
    """The one key sent, when it is 1..255 visible ASCII characters (inner spaces allowed)."""
    if len(values) != 1:
        return None
    key = values[0].decode("latin-1")
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        return None
    return key


def bad_key_detail() -> str:
    return f"send one {HEADER} of 1..{MAX_KEY_LENGTH} visible ASCII characters"


def answer_subject(path: str, body: bytes) -> str | None:
    """The workflow an answer shows (a workflow document, a run, a permanent delete), if any."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    subject = document.get("workflowId")
    if subject is None and path.startswith(f"{API_PREFIX}workflows/"):
        subject = document.get("id")
    return subject if isinstance(subject, str) else None

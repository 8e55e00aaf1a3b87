"""Test data many tests use: who acts, a pipeline, cost lines and a tiny image, spelled once."""

from __future__ import annotations

from typing import Any

from domain.workflow import Actor

ACTOR: Actor = {"keyId": "k1", "keyName": "ops"}
"""The caller of writes made straight through the domain, as a script would, around the HTTP edge."""
STEP: dict[str, Any] = {"type": "designer", "cliId": "claude"}
"""A pipeline step with only the required fields, as a request body spells it."""
STEPS: list[dict[str, Any]] = [STEP]
"""A one-step pipeline."""
OPUS = {
    "model": "claude-opus-4-7",
    "cliId": "claude",
    "costUsd": 1.25,
    "inputTokens": 1000,
    "outputTokens": 200,
}
"""A cost line with every field set."""
GPT = {"model": "gpt-5", "cliId": "codex", "costUsd": 0.1}
"""A cost line with only the required fields."""
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
"""The first bytes of a 1x1 PNG: enough for the upload route's content sniffing."""

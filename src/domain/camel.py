"""The one base for every Struct clients or stored content see: snake_case in Python, camelCase outside."""

from __future__ import annotations

import msgspec


class CamelStruct(msgspec.Struct, rename="camel"):
    """Subclasses inherit the camelCase spelling and add their own options (`kw_only=True`, …)."""

"""Bounds on a JSON body's shape, checked on the raw bytes before anything is decoded.

A 2 MiB body is cheap to receive but can be costly to decode: a thousand nested arrays exhaust the
decoder's recursion, and hundreds of thousands of tiny arrays become hundreds of thousands of Python
objects, copied again by every layer that handles the body. So before decoding, the structure
characters outside strings are counted and the nesting depth tracked over the brackets alone.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 64
"""Spec §5: JSON nested deeper than this is refused."""

MAX_CONTAINERS = 100_000
"""Objects and arrays in one body. A maximal graph whose nodes each have a `position` and a `data`
object holding three more objects or arrays (5,000 nodes, 20,000 edges, 200 steps) has about 50,000,
and already needs more than 2 MiB; twice that leaves room for any real builder and still caps what
a body of tiny nested arrays can cost."""

MAX_MEMBERS = 400_000
"""Values and keys in one body (counted as `,` and `:` outside strings, plus the containers). The
largest graph of the contract (5,000 nodes with `position` and `data`, 20,000 edges) has about
215,000; the cap bounds bodies of a million one-byte values, which would cost more than that graph."""

_STRUCTURE = b'"[]{},:'
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in _STRUCTURE)
_OPENERS = frozenset(b"[{")
_CHUNK = 1 << 16
_NUL_ESCAPE = b"\\u0000"


def shape_problem(body: bytes) -> str | None:
    """Why a body's nesting or size is refused, or None when it is within bounds.

    Malformed JSON passes when its brackets are within bounds; the decoder reports it in its words.
    """
    skeleton = structure_outside_strings(body)
    containers = skeleton.count(b"[") + skeleton.count(b"{")
    if containers > MAX_CONTAINERS:
        return f"more than {MAX_CONTAINERS} objects and arrays in one body"
    if containers + skeleton.count(b",") + skeleton.count(b":") > MAX_MEMBERS:
        return f"more than {MAX_MEMBERS} values in one body"
    depth = 0
    for byte in skeleton.translate(None, b",:"):
        if byte in _OPENERS:
            depth += 1
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
        else:
            depth -= 1
    return None


def structure_outside_strings(body: bytes) -> bytes:
    """The body's `[]{},:` that are not inside a string, in order.

    Only C-speed byte operations, and none that makes an object per string: escaped backslashes
    and then escaped quotes are dropped (left to right, as a JSON decoder pairs them), so every
    quote left delimits a string; everything but quotes and structure is dropped; `""` pairs go
    (empty strings, or two strings with no structure between them); what quotes remain enclose
    structure characters inside strings, dropped by quote parity a chunk at a time.
    """
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = unescaped.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' not in skeleton:
        return skeleton
    kept, inside = [], False
    for start in range(0, len(skeleton), _CHUNK):
        parts = skeleton[start : start + _CHUNK].split(b'"')
        kept.append(b"".join(parts[1 if inside else 0 :: 2]))
        inside ^= len(parts) % 2 == 0
    return b"".join(kept)


def may_hold_nul(body: bytes) -> bool:
    """Whether a JSON body can hold U+0000: JSON writes it only as the escape `\\u0000`."""
    return _NUL_ESCAPE in body


Trail = tuple[Any, str | int] | None
"""Where a value sits: (the trail of its container, its key or index), None at the top."""


def nul_path(value: Any) -> str | None:
    """The path (`links.personas[0].name`) of the first string or key holding U+0000, or None.

    A key holding it is reported at the path of its object. Paths are spelled only for the hit.
    """
    pending: list[tuple[Any, Trail]] = [(value, None)]
    while pending:
        node, trail = pending.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return spell(trail)
        elif isinstance(node, dict):
            if any("\x00" in key for key in node):
                return spell(trail)
            pending.extend((item, (trail, key)) for key, item in reversed(node.items()))
        elif isinstance(node, list):
            pending.extend((node[index], (trail, index)) for index in reversed(range(len(node))))
    return None


def spell(trail: Trail) -> str:
    """A trail as clients write a field path: `a.b[2].c`."""
    steps: list[str | int] = []
    while trail is not None:
        trail, step = trail
        steps.append(step)
    path = ""
    for step in reversed(steps):
        path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else step)
    return path

"""A cheap load generator: asyncio protocols on raw keep-alive HTTP/1.1 connections, one per client.

The client shares the machine's two cores with the server, so it does as little as it can: requests
are prebuilt bytes, answers are parsed only as far as status and length. The baselines use the same
client, so a ratio compares servers, not clients.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

GRACE_SECONDS = 30.0
"""How long past its duration a point may wait for its first counted answer."""
MakeRequest = Callable[[int, int], bytes]
"""(connection index, request number on that connection) -> the request's bytes."""


class Answer:
    """One response: its status and body."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self._transport: asyncio.Transport | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"the server closed the connection ({exc})"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        answer = self._parse()
        if answer is not None and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(answer)

    def _parse(self) -> Answer | None:
        """A complete response at the head of the buffer, removed from it; None until one is whole."""
        buffer = self._buffer
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = bytes(buffer[:head_end]).lower()
        status = int(head[9:12])
        start = head_end + 4
        length_at = head.find(b"\r\ncontent-length:")
        if length_at >= 0:
            line_end = head.find(b"\r\n", length_at + 2)
            length = int(head[length_at + 17 : line_end if line_end >= 0 else None])
            if len(buffer) < start + length:
                return None
            body = bytes(buffer[start : start + length])
            del buffer[: start + length]
            return Answer(status, body)
        if b"transfer-encoding: chunked" in head:
            return self._parse_chunked(status, start)
        del buffer[:start]  # no body (204, 304)
        return Answer(status, b"")

    def _parse_chunked(self, status: int, start: int) -> Answer | None:
        buffer, body, at = self._buffer, bytearray(), start
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                return None
            size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
            if len(buffer) < line_end + 2 + size + 2:
                return None
            body += buffer[line_end + 2 : line_end + 2 + size]
            at = line_end + 2 + size + 2
            if size == 0:
                del buffer[:at]
                return Answer(status, bytes(body))

    async def request(self, raw: bytes) -> Answer:
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def build_request(
    method: str, target: str, *, port: int, key: str | None = None, body: bytes | None = None
) -> bytes:
    """The bytes of one HTTP/1.1 request."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


@dataclass
class Load:
    """What one closed-loop measurement saw."""

    connections: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    client_cpu: float = 0.0
    """The share of one core the client process used while it ran (1.0: a whole core)."""

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]

    def merged(self, other: Load) -> Load:
        """Both measurements as one (a baseline taken before and after what it is compared with)."""
        latencies = self.latencies_ms + other.latencies_ms
        first_error = self.first_error or other.first_error
        errors = self.errors + other.errors
        cpu = (self.client_cpu + other.client_cpu) / 2
        return Load(self.connections, self.seconds + other.seconds, latencies, errors, first_error, cpu)

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)


async def _closed_loop(
    host: str, port: int, make: MakeRequest, connections: int, warmup: float, duration: float
) -> Load:
    opened = [await HttpConnection.open(host, port) for _ in range(connections)]
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    window = Window(warmup, duration)
    load = Load(connections, duration)

    async def client(index: int, connection: HttpConnection) -> None:
        number = 0
        while window.open(load.count):
            sent = time.perf_counter()
            answer = await connection.request(make(index, number))
            number += 1
            if answer.status >= 400:
                load.errors += 1
                load.first_error = load.first_error or f"{answer.status} {answer.body[:300]!r}"
            elif sent >= window.measure_from:
                load.latencies_ms.append((time.perf_counter() - sent) * 1000)

    try:
        await asyncio.gather(*(client(i, c) for i, c in enumerate(opened)))
    finally:
        for connection in opened:
            connection.close()
    load.seconds = window.seconds
    load.client_cpu = (time.process_time() - cpu_started) / (time.perf_counter() - wall_started)
    return load


class Window:
    """When requests count, and when to stop sending: after the duration, once one answer was counted
    (a point with no answer at all, as a stalled baseline can give in a short smoke run, says nothing)."""

    def __init__(self, warmup: float, duration: float) -> None:
        began = time.perf_counter()
        self.measure_from, self.stop_at = began + warmup, began + warmup + duration
        self.last_sent = self.stop_at

    def open(self, counted: int) -> bool:
        now = time.perf_counter()
        if now < self.stop_at:
            return True
        if counted == 0 and now < self.stop_at + GRACE_SECONDS:
            self.last_sent = now
            return True
        return False

    @property
    def seconds(self) -> float:
        return max(self.stop_at, self.last_sent) - self.measure_from


def closed_loop(
    port: int, make: MakeRequest, connections: int, warmup: float, duration: float, host: str = "127.0.0.1"
) -> Load:
    """`connections` clients each sending its next request as soon as the last is answered.

    Only answers to requests sent after `warmup` seconds count; no request is sent after
    warmup + duration, so the rate is answered requests over `duration`.
    """
    return asyncio.run(_closed_loop(host, port, make, connections, warmup, duration))

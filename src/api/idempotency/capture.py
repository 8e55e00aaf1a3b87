"""ASGI messages kept aside: a request body read ahead then replayed, an answer copied then sent again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from api.idempotency.keys import HEADER
from composition.settings import MAX_BODY_BYTES
from store.idempotency import Answer

if TYPE_CHECKING:
    from litestar.types import HTTPRequestEvent, Message, Receive, ReceiveMessage, Send

KEPT_HEADERS = frozenset({"content-type", "etag", "location", "cache-control"})
"""The response headers a replay repeats; the rest (date, request id, length) belong to each answer."""

log = logging.getLogger("workflow_service")


class CapturedAnswer:
    """Passes a response on while keeping a copy; the last body part waits until the copy is stored."""

    def __init__(self, send: Send, on_complete: Callable[[Answer], Awaitable[None]]) -> None:
        self._send = send
        self._on_complete = on_complete
        self._status = 0
        self._headers: list[tuple[str, str]] = []
        self._chunks: list[bytes] = []
        self.settled = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._status = message["status"]
            self._headers = [
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in message.get("headers", [])
                if name.decode("latin-1").lower() in KEPT_HEADERS
            ]
        elif message["type"] == "http.response.body":
            self._chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                try:
                    await self._on_complete(Answer(self._status, self._headers, b"".join(self._chunks)))
                    self.settled = True
                except Exception:  # the write itself succeeded: answer it; the claim expires on its own
                    log.exception("could not record the answer of an %s request", HEADER)
        await self._send(message)


async def read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None past the API's limit, or when the client left) and a receive replaying it."""
    messages: list[ReceiveMessage] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, replaying(messages, receive)
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY_BYTES:
            return None, replaying(messages, receive)
        if not message.get("more_body", False):
            body = b"".join(chunks)
            whole: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
            return body, replaying([whole], receive)


def replaying(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> ReceiveMessage:
        return pending.pop(0) if pending else await receive()

    return replay


async def send_answer(send: Send, answer: Answer) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    headers += [(b"content-length", str(len(answer.body)).encode()), (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})

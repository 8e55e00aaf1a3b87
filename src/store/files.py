"""Reference-image uploads: single-use upload slots, content-addressed storage, and per-project ids."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from domain.errors import Conflict, DomainError, InvalidInput, NotFound
from store.database import Database, Tx

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
UPLOAD_URL_LIFETIME = timedelta(minutes=15)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
SNIFF_BYTES = 12
"""Enough leading bytes to tell the four accepted formats apart (RIFF....WEBP is the longest)."""

FILES_DDL = (
    "CREATE TABLE IF NOT EXISTS upload_slots ("
    " token_hash TEXT PRIMARY KEY, project_id TEXT NOT NULL, content_type TEXT,"
    " created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT)",
    "CREATE TABLE IF NOT EXISTS files ("
    " storage_id TEXT PRIMARY KEY, project_id TEXT NOT NULL, sha256 TEXT NOT NULL,"
    " content_type TEXT NOT NULL, size BIGINT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS files_by_project ON files (project_id, storage_id)",
)


class UploadTooLarge(DomainError):
    """The body passed MAX_UPLOAD_BYTES; nothing of it is kept."""


class NotAnImage(DomainError):
    """The bytes are not one of the accepted image formats, whatever the request claimed."""


def image_type(head: bytes) -> str | None:
    """The media type the leading bytes prove, or None: the header a client sends is never trusted."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= SNIFF_BYTES and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def stamp(moment: datetime) -> str:
    """Fixed-width UTC text, so that timestamps compare correctly as strings in SQL."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hash_token(token: str) -> str:
    """Tokens are 256 random bits, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class UploadSlot:
    """A fresh upload URL's secret and deadline: the token exists nowhere else after this."""

    token: str
    expires_at: datetime


@dataclass(frozen=True)
class StoredFile:
    """One accepted upload, as the uploader is told about it."""

    storage_id: str
    content_type: str
    size: int
    sha256: str


class Incoming:
    """An upload being received: chunks go to a temporary file and a running hash, never all in memory."""

    def __init__(self, temp_dir: Path) -> None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=temp_dir, prefix="upload-")
        self.path = Path(name)
        self._file: IO[bytes] = os.fdopen(handle, "wb")
        self._hash = hashlib.sha256()
        self._kept = False
        self.size = 0
        self.head = b""

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > MAX_UPLOAD_BYTES:
            raise UploadTooLarge(f"an upload is at most {MAX_UPLOAD_BYTES} bytes (10 MiB)")
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> str:
        """Flush to disk and answer the SHA-256 of everything written."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._hash.hexdigest()

    def keep_at(self, target: Path) -> None:
        """Move the bytes to `target`, or drop them when identical bytes are already there."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            self.path.unlink()
        else:
            os.replace(self.path, target)
        self._kept = True

    def discard(self) -> None:
        """Remove the temporary file unless it was kept; safe to call more than once."""
        self._file.close()
        if not self._kept:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


class Files:
    """Upload slots and stored files, over the store's database and a local directory."""

    def __init__(self, database: Database, files_dir: Path, clock: Callable[[], datetime] = utc_now) -> None:
        self.database = database
        self.files_dir = files_dir
        self.clock = clock

    def create_upload_slot(self, project_id: str, content_type: str | None = None) -> UploadSlot:
        """A single-use upload URL's token; only its hash is stored."""
        if content_type is not None and content_type not in IMAGE_TYPES:
            raise InvalidInput("contentType", f"must be one of {', '.join(IMAGE_TYPES)}")
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires_at = now + UPLOAD_URL_LIFETIME
        with self.database.transaction() as tx:
            tx.execute(
                "INSERT INTO upload_slots (token_hash, project_id, content_type, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (hash_token(token), project_id, content_type, stamp(now), stamp(expires_at)),
            )
        return UploadSlot(token=token, expires_at=expires_at)

    def check_slot(self, token: str) -> None:
        """Refuse an unknown (404), used or expired (409) upload URL before reading any of its body."""
        with self.database.transaction(commit=False) as tx:
            self._check_slot(tx, token)

    def _check_slot(self, tx: Tx, token: str) -> None:
        row = tx.execute(
            "SELECT expires_at, used_at FROM upload_slots WHERE token_hash = ?", (hash_token(token),)
        ).fetchone()
        if row is None:
            raise NotFound("this upload URL does not exist")
        if row["used_at"] is not None:
            raise Conflict("this upload URL has already been used; ask for a new one")
        if row["expires_at"] <= stamp(self.clock()):
            raise Conflict("this upload URL has expired; ask for a new one")

    def receive(self) -> Incoming:
        """A temporary file beside the store, so that accepting it is one atomic rename."""
        return Incoming(self.files_dir / "tmp")

    def accept(self, token: str, incoming: Incoming) -> StoredFile:
        """Claim the slot once, atomically, and keep the bytes; a refused body leaves the slot usable."""
        sha256 = incoming.finish()
        content_type = image_type(incoming.head)
        if content_type is None:
            raise NotAnImage("the body is not a PNG, JPEG, GIF or WebP image (checked by its bytes)")
        storage_id = "img_" + uuid.uuid4().hex
        now = stamp(self.clock())
        with self.database.transaction() as tx:
            claimed = tx.execute(
                "UPDATE upload_slots SET used_at = ?"
                " WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?"
                " RETURNING project_id, content_type",
                (now, hash_token(token), now),
            ).fetchone()
            if claimed is None:
                self._check_slot(tx, token)
                raise Conflict("this upload URL has already been used; ask for a new one")
            expected = claimed["content_type"]
            if expected is not None and expected != content_type:
                raise NotAnImage(f"the body is {content_type}, but the upload URL was asked for {expected}")
            incoming.keep_at(self.path_of(sha256))
            tx.execute(
                "INSERT INTO files (storage_id, project_id, sha256, content_type, size, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (storage_id, claimed["project_id"], sha256, content_type, incoming.size, now),
            )
        return StoredFile(storage_id=storage_id, content_type=content_type, size=incoming.size, sha256=sha256)

    def path_of(self, sha256: str) -> Path:
        return self.files_dir / sha256[:2] / sha256

    def check_reference_images(self, project_id: str, storage_ids: list[str]) -> None:
        """Every id must name an image uploaded to this project; another project's is as unknown."""
        if not storage_ids:
            return
        unique = sorted(set(storage_ids))
        marks = ", ".join("?" for _ in unique)
        query = "SELECT storage_id, content_type FROM files WHERE project_id = ? AND storage_id IN "
        with self.database.transaction(commit=False) as tx:
            rows = tx.execute(f"{query}({marks})", (project_id, *unique)).fetchall()
        types = {row["storage_id"]: row["content_type"] for row in rows}
        for index, storage_id in enumerate(storage_ids):
            field = f"referenceImageIds[{index}]"
            if storage_id not in types:
                raise InvalidInput(field, f"no uploaded file has id {storage_id!r} in this project")
            if types[storage_id] not in IMAGE_TYPES:
                raise InvalidInput(field, f"the file {storage_id!r} is not an image")

"""The key-encryption key (KEK) that wraps every data key, kept outside the database it protects.

A copy of the database alone opens nothing: each data key is stored encrypted under the KEK,
which comes from `WFS_MASTER_KEY`, from a key file, or (embedded SQLite only) from a key file the
service creates beside the database file on first start.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASTER_KEY_BYTES = 32
WRAPPED_PREFIX = "kek1:"
"""Marks a wrapped data key; a stored value without it is a plain-hex key from before wrapping."""
CHECK_TEXT = b"workflow-service master key check"
CHECK_CONTEXT = b"wfs-master-key-check"
MASTER_KEY_ENV = "DATA_KEYS_MASTER_KEY"
MASTER_KEY_SOURCE_ENV = "DATA_KEYS_MASTER_KEY_SOURCE"
KEY_FORMAT = "32 bytes written as 64 hex digits or as base64 (e.g. `openssl rand -hex 32`)"

log = logging.getLogger(__name__)


class MasterKeyError(Exception):
    """The master key is missing, malformed, or not the one this store's data keys are wrapped with."""


@dataclass(frozen=True)
class KeyEncryptionKey:
    """Wraps and unwraps data keys; each wrapped key is bound to its aggregate's id."""

    key: bytes
    source: str
    """Where the key came from, for messages (never the key itself)."""

    def wrap(self, data_key: bytes, aggregate_id: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.key).encrypt(nonce, data_key, _data_key_context(aggregate_id))
        return WRAPPED_PREFIX + base64.b64encode(nonce + sealed).decode()

    def unwrap(self, stored: str, aggregate_id: str) -> bytes:
        """The data key of a stored value; a plain-hex value (not yet migrated) is read as it is."""
        if not stored.startswith(WRAPPED_PREFIX):
            return bytes.fromhex(stored)
        blob = base64.b64decode(stored[len(WRAPPED_PREFIX) :])
        try:
            return AESGCM(self.key).decrypt(blob[:12], blob[12:], _data_key_context(aggregate_id))
        except InvalidTag:
            raise MasterKeyError(self.mismatch()) from None

    def check_value(self) -> str:
        """A value only this key opens, stored so a wrong key is refused at start, not per event."""
        nonce = os.urandom(12)
        return base64.b64encode(nonce + AESGCM(self.key).encrypt(nonce, CHECK_TEXT, CHECK_CONTEXT)).decode()

    def opens(self, check_value: str) -> bool:
        blob = base64.b64decode(check_value)
        try:
            return AESGCM(self.key).decrypt(blob[:12], blob[12:], CHECK_CONTEXT) == CHECK_TEXT
        except InvalidTag:
            return False

    def to_env(self) -> dict[str, str]:
        """How the composition root hands the key to the application (as the library's CIPHER_KEY)."""
        return {MASTER_KEY_ENV: self.key.hex(), MASTER_KEY_SOURCE_ENV: self.source}

    @classmethod
    def from_env(cls, get: Callable[[str], str | None]) -> KeyEncryptionKey:
        value = get(MASTER_KEY_ENV)
        if not value:
            raise MasterKeyError("the application was built without a master key (see resolve_master_key)")
        return cls(bytes.fromhex(value), get(MASTER_KEY_SOURCE_ENV) or "the environment")

    def mismatch(self) -> str:
        return (
            f"the master key from {self.source} is not the one this store's data keys were wrapped"
            " with; start with the deployment's original WFS_MASTER_KEY or key file"
        )


def _data_key_context(aggregate_id: str) -> bytes:
    """Binds a wrapped key to its aggregate, so it cannot be copied onto another's row."""
    return f"wfs-data-key:{aggregate_id}".encode()


def parse_master_key(text: str, source: str) -> KeyEncryptionKey:
    """A KEK from 64 hex digits or base64 of 32 bytes; anything else is refused with the format."""
    value = text.strip()
    if len(value) == 2 * MASTER_KEY_BYTES and all(ch in string.hexdigits for ch in value):
        return KeyEncryptionKey(bytes.fromhex(value), source)
    try:
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != MASTER_KEY_BYTES:
        raise MasterKeyError(f"{source} must hold {KEY_FORMAT}")
    return KeyEncryptionKey(raw, source)


def read_key_file(path: Path) -> KeyEncryptionKey:
    source = f"the key file {path}"
    try:
        text = path.read_text()
    except OSError as error:
        raise MasterKeyError(f"cannot read {source}: {error.strerror}") from None
    if path.stat().st_mode & 0o077:
        log.warning("%s can be read by other users; chmod 600 it", source)
    return parse_master_key(text, source)


def create_key_file(path: Path) -> KeyEncryptionKey:
    """Make a new random key file (mode 0600) unless another process made one first; read the winner."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(AESGCM.generate_key(bit_length=256).hex() + "\n")
        file.flush()
        os.fsync(file.fileno())
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return read_key_file(path)


def default_key_file(sqlite_path: str) -> Path:
    """Beside, not inside, the embedded database file: `workflow-service.db` → `workflow-service.db.key`."""
    return Path(f"{sqlite_path}.key")


def resolve_master_key(*, value: str | None, file: Path | None, sqlite_path: str | None) -> KeyEncryptionKey:
    """The deployment's KEK: WFS_MASTER_KEY, else WFS_MASTER_KEY_FILE, else (SQLite) the default file.

    On PostgreSQL with neither set the service refuses to start: several hosts must share one KEK,
    so inventing one on a single host would make the others unable to read its workflows.
    """
    if value and file:
        raise MasterKeyError("set WFS_MASTER_KEY or WFS_MASTER_KEY_FILE, not both")
    if value:
        return parse_master_key(value, "WFS_MASTER_KEY")
    if file:
        return read_key_file(file)
    if sqlite_path is None:
        raise MasterKeyError(
            "a PostgreSQL store needs a master key that every server process shares: set"
            f" WFS_MASTER_KEY to {KEY_FORMAT}, or WFS_MASTER_KEY_FILE to a file holding one"
        )
    path = default_key_file(sqlite_path)
    if path.exists():
        return read_key_file(path)
    return create_key_file(path)

"""Per-aggregate encryption of event content, so erasing one key makes one workflow unreadable."""

from __future__ import annotations

import base64
import os
from collections.abc import Hashable
from typing import Any, cast
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder, find_id_convertor
from eventsourcing.utils import get_topic, resolve_topic

from domain.database import Database
from domain.workflow import Sealed

CLEAR_FIELDS = frozenset({"timestamp", "actor", "project_id", "originator_topic"})
"""Fields kept readable after erasure, so the audit trail can still say what happened and who did it."""

DATA_KEYS_DDL = (
    "CREATE TABLE IF NOT EXISTS data_keys (aggregate_id TEXT PRIMARY KEY, data_key TEXT NOT NULL)",
)


class ErasedError(Exception):
    """The event's content was sealed with a data key that has since been destroyed."""


class DataKeys:
    """One random AES-256 key per aggregate; destroying it is what a permanent delete means."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def key_for(self, aggregate_id: str, *, create: bool) -> bytes | None:
        with self.database.transaction(commit=False) as tx:
            row = tx.execute(self._select, (aggregate_id,)).fetchone()
        if row is not None:
            return bytes.fromhex(row["data_key"])
        if not create:
            return None
        with self.database.transaction() as tx:
            tx.execute(
                "INSERT INTO data_keys (aggregate_id, data_key) VALUES (?, ?) "
                "ON CONFLICT (aggregate_id) DO NOTHING",
                (aggregate_id, AESGCM.generate_key(bit_length=256).hex()),
            )
            row = tx.execute(self._select, (aggregate_id,)).fetchone()
        return bytes.fromhex(row["data_key"])

    _select = "SELECT data_key FROM data_keys WHERE aggregate_id = ?"

    @staticmethod
    def destroy(tx: Any, aggregate_id: str) -> None:
        """Forget the key inside the caller's transaction; idempotent."""
        tx.execute("DELETE FROM data_keys WHERE aggregate_id = ?", (aggregate_id,))


class SealingMapper(Mapper[UUID]):
    """Maps events to stored events, encrypting the content of `Sealed` events with their own key."""

    def __init__(self, transcoder: Transcoder, keys: DataKeys) -> None:
        super().__init__(transcoder=transcoder)
        self.keys = keys

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        if isinstance(domain_event, Sealed):
            secret = {name: state.pop(name) for name in list(state) if name not in CLEAR_FIELDS}
            if secret:
                key = self.keys.key_for(str(originator_id), create=True)
                assert key is not None
                nonce = os.urandom(12)
                sealed = AESGCM(key).encrypt(
                    nonce,
                    self.transcoder.encode(secret),
                    _associated_data(originator_id, originator_version),
                )
                state["sealed"] = base64.b64encode(nonce + sealed).decode()
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=self.transcoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        state: dict[str, Any] = self.transcoder.decode(stored_event.state)
        sealed = state.pop("sealed", None)
        if sealed is not None:
            state.update(self._unseal(stored_event, sealed))
        convert = find_id_convertor(cls, cast(Hashable, type(stored_event.originator_id)))
        state["originator_id"] = convert(stored_event.originator_id)
        state["originator_version"] = stored_event.originator_version
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return cast(DomainEventProtocol[UUID], domain_event)

    def clear_state(self, stored_event: StoredEvent) -> dict[str, Any]:
        """The fields of a stored event that stay readable whether or not it was erased."""
        state: dict[str, Any] = self.transcoder.decode(stored_event.state)
        state.pop("sealed", None)
        return state

    def _unseal(self, stored_event: StoredEvent, sealed: str) -> dict[str, Any]:
        key = self.keys.key_for(str(stored_event.originator_id), create=False)
        if key is None:
            raise ErasedError(f"aggregate {stored_event.originator_id} was erased")
        blob = base64.b64decode(sealed)
        try:
            plain = AESGCM(key).decrypt(
                blob[:12],
                blob[12:],
                _associated_data(stored_event.originator_id, stored_event.originator_version),
            )
        except InvalidTag as error:
            raise ErasedError(f"event of {stored_event.originator_id} cannot be opened") from error
        secret: dict[str, Any] = self.transcoder.decode(plain)
        return secret


def _associated_data(originator_id: object, originator_version: int) -> bytes:
    """Binds a ciphertext to its event's place, so it cannot be moved to another event."""
    return f"{originator_id}:{originator_version}".encode()

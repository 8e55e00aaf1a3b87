"""Per-workflow encryption of event content, so erasing one key makes a workflow and its runs unreadable."""

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

from domain.errors import ErasedError
from domain.request_context import current_request_id
from domain.workflow import Sealed
from store.database import Database
from store.key_encryption import WRAPPED_PREFIX, KeyEncryptionKey, MasterKeyError

CLEAR_FIELDS = frozenset({"timestamp", "actor", "project_id", "originator_topic"})
"""Fields kept readable after erasure, so the audit trail can still say what happened and who did it.

A `Sealed` event class may name its own set in `clear_fields`, and in `key_owner_field` the field
holding the id of the aggregate whose data key seals it (default: the event's own aggregate).
"""

REQUEST_ID = "request_id"
"""The stored field naming the request that caused an event; always clear, never sealed.

Events stored outside a request (CLI, scripts), and events stored before request ids existed, have
none: they load with `request_id = None`.
"""

DATA_KEYS_DDL = (
    "CREATE TABLE IF NOT EXISTS data_keys (aggregate_id TEXT PRIMARY KEY, data_key TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS data_key_check (id INTEGER PRIMARY KEY, check_value TEXT NOT NULL)",
)


class DataKeys:
    """One random AES-256 key per workflow, stored wrapped by the KEK; destroying it is erasure."""

    def __init__(self, database: Database, master_key: KeyEncryptionKey) -> None:
        self.database = database
        self.master_key = master_key

    def key_for(self, aggregate_id: str, *, create: bool) -> bytes | None:
        with self.database.transaction(commit=False) as tx:
            row = tx.execute(self._select, (aggregate_id,)).fetchone()
        if row is not None:
            return self.master_key.unwrap(row["data_key"], aggregate_id)
        if not create:
            return None
        wrapped = self.master_key.wrap(AESGCM.generate_key(bit_length=256), aggregate_id)
        with self.database.transaction() as tx:
            tx.execute(
                "INSERT INTO data_keys (aggregate_id, data_key) VALUES (?, ?) "
                "ON CONFLICT (aggregate_id) DO NOTHING",
                (aggregate_id, wrapped),
            )
            row = tx.execute(self._select, (aggregate_id,)).fetchone()
        return self.master_key.unwrap(row["data_key"], aggregate_id)

    _select = "SELECT data_key FROM data_keys WHERE aggregate_id = ?"

    @staticmethod
    def destroy(tx: Any, aggregate_id: str) -> None:
        """Forget the key inside the caller's transaction; idempotent."""
        tx.execute("DELETE FROM data_keys WHERE aggregate_id = ?", (aggregate_id,))

    def check_master_key(self) -> None:
        """Refuse a KEK other than the store's: the first start records a check value, later ones test it."""
        with self.database.transaction() as tx:
            if tx.execute("SELECT 1 FROM data_key_check WHERE id = 1").fetchone() is None:
                self._check_a_wrapped_key(tx)
                tx.execute(
                    "INSERT INTO data_key_check (id, check_value) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
                    (self.master_key.check_value(),),
                )
            row = tx.execute("SELECT check_value FROM data_key_check WHERE id = 1").fetchone()
        if not self.master_key.opens(row["check_value"]):
            raise MasterKeyError(self.master_key.mismatch())

    def _check_a_wrapped_key(self, tx: Any) -> None:
        """A store wrapped before check values existed: one of its keys must open."""
        row = tx.execute(
            "SELECT aggregate_id, data_key FROM data_keys WHERE data_key LIKE ? LIMIT 1",
            (f"{WRAPPED_PREFIX}%",),
        ).fetchone()
        if row is not None:
            self.master_key.unwrap(row["data_key"], row["aggregate_id"])

    def wrap_plain_keys(self) -> int:
        """Wrap keys stored in plain hex by earlier versions; idempotent, safe beside other processes."""
        with self.database.transaction() as tx:
            rows = tx.execute(
                "SELECT aggregate_id, data_key FROM data_keys WHERE data_key NOT LIKE ?",
                (f"{WRAPPED_PREFIX}%",),
            ).fetchall()
            for row in rows:
                plain = bytes.fromhex(row["data_key"])
                tx.execute(
                    "UPDATE data_keys SET data_key = ? WHERE aggregate_id = ? AND data_key = ?",
                    (self.master_key.wrap(plain, row["aggregate_id"]), row["aggregate_id"], row["data_key"]),
                )
        if rows:
            self.database.clear_residue()
        return len(rows)


class SealingMapper(Mapper[UUID]):
    """Maps events to stored events, encrypting the content of `Sealed` events with their workflow's key."""

    def __init__(self, transcoder: Transcoder, keys: DataKeys) -> None:
        super().__init__(transcoder=transcoder)
        self.keys = keys

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        request_id = state.pop(REQUEST_ID, None) or current_request_id.get()
        if isinstance(domain_event, Sealed):
            self._seal(type(domain_event), state, originator_id, originator_version)
        if request_id is not None:
            state[REQUEST_ID] = request_id
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=self.transcoder.encode(state),
        )

    def _seal(self, cls: type, state: dict[str, Any], originator_id: UUID, originator_version: int) -> None:
        """Replace the content fields of `state` by their ciphertext under the owner's data key.

        Only a workflow's first event may make its key: a missing key later means the workflow
        was erased, and nothing may be sealed with a key made after that.
        """
        clear = getattr(cls, "clear_fields", CLEAR_FIELDS)
        secret = {name: state.pop(name) for name in list(state) if name not in clear}
        if not secret:
            return
        owner = _key_owner(cls, state, originator_id)
        first = owner == str(originator_id) and originator_version == 1
        key = self.keys.key_for(owner, create=first)
        if key is None:
            raise ErasedError(f"no workflow has id {owner!r}")
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(
            nonce, self.transcoder.encode(secret), _associated_data(originator_id, originator_version)
        )
        state["sealed"] = base64.b64encode(nonce + sealed).decode()

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        state: dict[str, Any] = self.transcoder.decode(stored_event.state)
        sealed = state.pop("sealed", None)
        if sealed is not None:
            owner = _key_owner(cls, state, stored_event.originator_id)
            state.update(self._unseal(stored_event, owner, sealed))
        state.setdefault(REQUEST_ID, None)
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

    def _unseal(self, stored_event: StoredEvent, owner: str, sealed: str) -> dict[str, Any]:
        key = self.keys.key_for(owner, create=False)
        if key is None:
            raise ErasedError(f"no workflow has id {owner!r}")
        blob = base64.b64decode(sealed)
        try:
            plain = AESGCM(key).decrypt(
                blob[:12],
                blob[12:],
                _associated_data(stored_event.originator_id, stored_event.originator_version),
            )
        except InvalidTag as error:
            raise ErasedError(f"no workflow has id {owner!r}") from error
        secret: dict[str, Any] = self.transcoder.decode(plain)
        return secret


def _key_owner(cls: type, state: dict[str, Any], originator_id: object) -> str:
    """The id of the aggregate whose data key seals events of `cls` (a run's: its workflow's)."""
    field: str | None = getattr(cls, "key_owner_field", None)
    return str(state[field]) if field else str(originator_id)


def _associated_data(originator_id: object, originator_version: int) -> bytes:
    """Binds a ciphertext to its event's place, so it cannot be moved to another event."""
    return f"{originator_id}:{originator_version}".encode()

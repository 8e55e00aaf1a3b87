"""Per-workflow encryption of event content, so erasing one key makes a workflow and its runs unreadable."""

from __future__ import annotations

import base64
import os
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
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
from store.data_keys import DATA_KEYS_DDL, BatchKeys, DataKeys, KeySource

__all__ = ["CLEAR_FIELDS", "DATA_KEYS_DDL", "REQUEST_ID", "DataKeys", "SealingMapper"]

CLEAR_FIELDS = frozenset({"timestamp", "actor", "project_id", "originator_topic"})
"""Fields kept readable after erasure, so the audit trail can still say what happened and who did it.

A `Sealed` event class may name its own set in `clear_fields`, and in `key_owner_field` the field
holding the id of the aggregate whose data key seals it (default: the event's own aggregate).
"""

CIPHERS_KEPT = 1024
"""AES-GCM contexts a mapper keeps for the keys it used last (cleared when full)."""

REQUEST_ID = "request_id"
"""The stored field naming the request that caused an event; always clear, never sealed.

Events stored outside a request (CLI, scripts), and events stored before request ids existed, have
none: they load with `request_id = None`.
"""


_batch_keys: ContextVar[BatchKeys | None] = ContextVar("batch_keys", default=None)
"""The keys of the batch this thread is decoding (`SealingMapper.batch`), if any."""


class SealingMapper(Mapper[UUID]):
    """Maps events to stored events, encrypting the content of `Sealed` events with their workflow's key.

    `keys` is the store's keys; `source` where existing keys are looked up: the process's cache
    (the default, for loads and saves), or a replay's (`with_keys`); within `batch`, one batch's.
    """

    def __init__(self, transcoder: Transcoder, keys: DataKeys, source: KeySource | None = None) -> None:
        super().__init__(transcoder=transcoder)
        self.keys = keys
        self.source: KeySource = source or keys
        self._ciphers: dict[bytes, AESGCM] = {}

    def with_keys(self, source: KeySource) -> SealingMapper:
        return SealingMapper(self.transcoder, self.keys, source)

    @contextmanager
    def batch(self, stored_events: Sequence[StoredEvent]) -> Iterator[None]:
        """Within the block, this thread decodes with these events' keys, read fresh in one query,
        not from the cache (projections: a view decodes only what the store can still decrypt)."""
        token = _batch_keys.set(BatchKeys(self.keys, self.owners(stored_events)))
        try:
            yield
        finally:
            _batch_keys.reset(token)

    def owners(self, stored_events: Sequence[StoredEvent]) -> set[str]:
        """The ids whose data keys seal these events (an unknown topic's event is left to the decode)."""
        owners: set[str] = set()
        for stored_event in stored_events:
            try:
                cls = resolve_topic(stored_event.topic)
                field: str | None = getattr(cls, "key_owner_field", None)
                if not field:
                    owners.add(str(stored_event.originator_id))
                elif issubclass(cls, Sealed):
                    owners.add(str(self.transcoder.decode(stored_event.state)[field]))
            except Exception:  # noqa: S112 - the decode reports it, event by event
                continue
        return owners

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        return self._stored(domain_event, None)

    def to_stored_events(
        self, domain_events: Sequence[DomainEventProtocol[UUID]]
    ) -> tuple[list[StoredEvent], dict[str, tuple[bytes, str]]]:
        """The stored events, and the data keys (plain, wrapped) made for workflows they create.

        The recorder stores those keys in the transaction of the events (`UPSERT_KEY`).
        """
        new_keys: dict[str, tuple[bytes, str]] = {}
        return [self._stored(event, new_keys) for event in domain_events], new_keys

    def _stored(
        self, domain_event: DomainEventProtocol[UUID], new_keys: dict[str, tuple[bytes, str]] | None
    ) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        request_id = state.pop(REQUEST_ID, None) or current_request_id.get()
        if isinstance(domain_event, Sealed):
            self._seal(type(domain_event), state, originator_id, originator_version, new_keys)
        if request_id is not None:
            state[REQUEST_ID] = request_id
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=self.transcoder.encode(state),
        )

    def _seal(
        self,
        cls: type,
        state: dict[str, Any],
        originator_id: UUID,
        originator_version: int,
        new_keys: dict[str, tuple[bytes, str]] | None,
    ) -> None:
        """Replace the content fields of `state` by their ciphertext under the owner's data key."""
        clear = getattr(cls, "clear_fields", CLEAR_FIELDS)
        secret = {name: state.pop(name) for name in list(state) if name not in clear}
        if not secret:
            return
        owner = _key_owner(cls, state, originator_id)
        key = self._sealing_key(owner, owner == str(originator_id) and originator_version == 1, new_keys)
        nonce = os.urandom(12)
        sealed = self._cipher(key).encrypt(
            nonce, self.transcoder.encode(secret), _associated_data(originator_id, originator_version)
        )
        state["sealed"] = base64.b64encode(nonce + sealed).decode()

    def _sealing_key(self, owner: str, first: bool, new_keys: dict[str, tuple[bytes, str]] | None) -> bytes:
        """Only a workflow's first event may make its key: a missing key later means it was erased,
        and nothing may be sealed with a key made after that."""
        if new_keys is not None and owner in new_keys:
            return new_keys[owner][0]
        if first and new_keys is not None:
            new_keys[owner] = self.keys.new_key(owner)
            return new_keys[owner][0]
        key = self.keys.key_for(owner, create=True) if first else self.source.key(owner)
        if key is None:
            raise ErasedError(f"no workflow has id {owner!r}")
        return key

    def _cipher(self, key: bytes) -> AESGCM:
        """One AESGCM per key in use (making one costs about as much as decrypting an event)."""
        cipher = self._ciphers.get(key)
        if cipher is None:
            if len(self._ciphers) >= CIPHERS_KEPT:
                self._ciphers.clear()
            cipher = self._ciphers[key] = AESGCM(key)
        return cipher

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
        key = (_batch_keys.get() or self.source).key(owner)
        if key is None:
            raise ErasedError(f"no workflow has id {owner!r}")
        blob = base64.b64decode(sealed)
        try:
            plain = self._cipher(key).decrypt(
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

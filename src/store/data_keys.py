"""Per-workflow data keys: stored wrapped by the KEK, unwrapped at most once per process while in use.

Crypto-shredding holds with the cache because of where each lookup may come from:

- `key` (cached) serves loading and saving aggregates. A workflow's stream ends in its
  `PermanentlyDeleted` event, committed before the erasure projection destroys the key, so any load
  after the destruction replays that event and the service answers 404 (`Workflow.erased`); a run
  load checks its workflow's last event the same way (`RunService.get_run`). A key another process
  still caches therefore decrypts nothing the API then shows. A save after the erasure clashes with
  the `PermanentlyDeleted` event's version, or fails the erased check on its reload.
- `key_for` and `fetch` read the store fresh, never the cache: idempotency answers (which no stream
  guards) and projection batches (`BatchKeys`) decrypt only what the store can still decrypt.
- In the process that erases, `destroy` evicts the key once the deletion commits, and a lookup that
  read the row before then does not put it back (`_erasures`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from typing import Any, ClassVar, Protocol
from weakref import WeakSet

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from store.database import Database
from store.key_encryption import WRAPPED_PREFIX, KeyEncryptionKey, MasterKeyError

DATA_KEYS_DDL = (
    "CREATE TABLE IF NOT EXISTS data_keys (aggregate_id TEXT PRIMARY KEY, data_key TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS data_key_check (id INTEGER PRIMARY KEY, check_value TEXT NOT NULL)",
)
CACHED_KEYS = 10_000
"""Unwrapped keys a process keeps (32 bytes each), least recently used first out."""
FETCH_CHUNK = 500
"""Data keys asked for in one query."""


class KeySource(Protocol):
    """Where a mapper finds an existing data key: None when there is none (never made, or erased)."""

    def key(self, aggregate_id: str) -> bytes | None: ...


class DataKeys:
    """One random AES-256 key per workflow, stored wrapped by the KEK; destroying it is erasure."""

    _live: ClassVar[WeakSet[DataKeys]] = WeakSet()
    """This process's instances, so an erasure evicts the key from every one of them."""

    def __init__(self, database: Database, master_key: KeyEncryptionKey, cached: int = CACHED_KEYS) -> None:
        self.database = database
        self.master_key = master_key
        self._cached = cached
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._erasures = 0
        DataKeys._live.add(self)

    def key(self, aggregate_id: str) -> bytes | None:
        """For loads and saves: from this process's cache, else from the store (then kept)."""
        with self._lock:
            key = self._cache.get(aggregate_id)
            if key is not None:
                self._cache.move_to_end(aggregate_id)
                return key
            epoch = self._erasures
        key = self.fetch([aggregate_id]).get(aggregate_id)
        if key is not None:
            self.remember({aggregate_id: key}, epoch)
        return key

    def key_for(self, aggregate_id: str, *, create: bool) -> bytes | None:
        """Fresh from the store, never the cache; `create` stores a new one when there is none."""
        key = self.fetch([aggregate_id]).get(aggregate_id)
        if key is not None or not create:
            return key
        with self.database.transaction() as tx:
            tx.execute(
                "INSERT INTO data_keys (aggregate_id, data_key) VALUES (?, ?) "
                "ON CONFLICT (aggregate_id) DO NOTHING",
                (aggregate_id, self.master_key.wrap(AESGCM.generate_key(bit_length=256), aggregate_id)),
            )
        return self.fetch([aggregate_id]).get(aggregate_id)

    def fetch(self, aggregate_ids: Collection[str]) -> dict[str, bytes]:
        """The stored keys of `aggregate_ids`, unwrapped, in one query per FETCH_CHUNK ids."""
        wanted = sorted(set(aggregate_ids))
        found: dict[str, bytes] = {}
        with self.database.transaction(commit=False) as tx:
            for start in range(0, len(wanted), FETCH_CHUNK):
                chunk = wanted[start : start + FETCH_CHUNK]
                rows = tx.execute(
                    "SELECT aggregate_id, data_key FROM data_keys"  # noqa: S608 - only placeholders added
                    f" WHERE aggregate_id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for row in rows:
                    found[row["aggregate_id"]] = self.master_key.unwrap(row["data_key"], row["aggregate_id"])
        return found

    def new_key(self, aggregate_id: str) -> tuple[bytes, str]:
        """A new key and its wrapped form, for the recorder to store with the workflow's first events."""
        key = AESGCM.generate_key(bit_length=256)
        return key, self.master_key.wrap(key, aggregate_id)

    def epoch(self) -> int:
        """Taken before reading or storing keys: `remember` keeps nothing if an erasure came between."""
        with self._lock:
            return self._erasures

    def remember(self, keys: dict[str, bytes], epoch: int) -> None:
        with self._lock:
            if self._erasures != epoch:
                return
            for aggregate_id, key in keys.items():
                self._cache[aggregate_id] = key
                self._cache.move_to_end(aggregate_id)
            while len(self._cache) > self._cached:
                self._cache.popitem(last=False)

    def forget(self, aggregate_id: str) -> None:
        with self._lock:
            self._erasures += 1
            self._cache.pop(aggregate_id, None)

    @staticmethod
    def destroy(tx: Any, aggregate_id: str) -> None:
        """Forget the key inside the caller's transaction (idempotent), and in this process's caches."""
        tx.execute("DELETE FROM data_keys WHERE aggregate_id = ?", (aggregate_id,))
        _forget_everywhere(aggregate_id)
        tx.after_commit(lambda: _forget_everywhere(aggregate_id))

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


def _forget_everywhere(aggregate_id: str) -> None:
    for keys in list(DataKeys._live):
        keys.forget(aggregate_id)


class BatchKeys:
    """One batch's keys, read fresh from the store in one query; an owner outside it costs one more."""

    def __init__(self, keys: DataKeys, owners: Collection[str]) -> None:
        self.keys = keys
        found = keys.fetch(owners) if owners else {}
        self.known: dict[str, bytes | None] = {owner: found.get(owner) for owner in owners}

    def key(self, aggregate_id: str) -> bytes | None:
        if aggregate_id not in self.known:
            self.known[aggregate_id] = self.keys.fetch([aggregate_id]).get(aggregate_id)
        return self.known[aggregate_id]

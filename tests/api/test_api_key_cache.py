"""A process answers for a live API key from memory for a few seconds: revoked elsewhere, the key stops
working within KEY_CACHE_SECONDS; revoked here, or expired, at once; a new key works at once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

import store.accounts
from composition.services import Services
from store.accounts import Accounts
from tests.support.client import Api

SHORT_CACHE = 0.3


def listed_last_use(services: Services, key_id: str) -> str | None:
    return next(key.last_used_at for key in services.accounts.list_keys() if key.key_id == key_id)


def test_a_key_revoked_by_another_process_stops_working_within_the_cache_bound(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.accounts, "KEY_CACHE_SECONDS", SHORT_CACHE)
    assert api.get("/workflows/list").status_code == 200
    elsewhere = Accounts(services.database)  # as the CLI's `keys revoke` in its own process
    for key in elsewhere.list_keys():
        if key.project_id == api.project_id:
            elsewhere.revoke_key(key.key_id)

    time.sleep(SHORT_CACHE + 0.05)

    assert api.get("/workflows/list").status_code == 401


def test_a_key_revoked_through_this_process_stops_working_at_once(api: Api, services: Services) -> None:
    assert api.get("/workflows/list").status_code == 200
    for key in services.accounts.list_keys():
        if key.project_id == api.project_id:
            services.accounts.revoke_key(key.key_id)
    assert api.get("/workflows/list").status_code == 401


def test_a_key_made_by_another_process_works_at_once(api: Api, services: Services) -> None:
    assert api.get("/workflows/list").status_code == 200
    made = Accounts(services.database).create_key(api.project_id, "made elsewhere")
    headers = {"Authorization": f"Bearer {made.secret}"}
    assert api.client.get("/api/v1/workflows/list", headers=headers).status_code == 200


def test_a_cached_key_that_expires_stops_working_at_once(api: Api, services: Services) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    key = services.accounts.create_key(api.project_id, "brief", "read", expires_at=soon)
    headers = {"Authorization": f"Bearer {key.secret}"}
    assert api.client.get("/api/v1/workflows/list", headers=headers).status_code == 200
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    assert api.client.get("/api/v1/workflows/list", headers=headers).status_code == 401


def test_uses_are_recorded_first_at_once_then_in_batches(api: Api, services: Services) -> None:
    key = services.accounts.create_key(api.project_id, "counted", "read")
    headers = {"Authorization": f"Bearer {key.secret}"}
    assert api.client.get("/api/v1/workflows/list", headers=headers).status_code == 200
    first = listed_last_use(services, key.key_id)
    assert first is not None

    assert api.client.get("/api/v1/workflows/list", headers=headers).status_code == 200
    assert listed_last_use(services, key.key_id) == first  # noted, not yet written
    services.accounts.flush_uses()
    later = listed_last_use(services, key.key_id)
    assert later is not None
    assert later > first

"""Reference-image uploads over HTTP: the upload-URL route, the keyless upload route, and their abuse."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from composition.services import Services
from domain.errors import Conflict, InvalidInput
from store.files import MAX_UPLOAD_BYTES, Incoming, StoredFile, utc_now
from tests.support.client import Api, send, upload_url
from tests.support.data import PNG

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF87 = (
    b"GIF87a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
GIF89 = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"

IMAGES = {
    "png": (PNG, "image/png"),
    "jpeg": (JPEG, "image/jpeg"),
    "gif87a": (GIF87, "image/gif"),
    "gif89a": (GIF89, "image/gif"),
    "webp": (WEBP, "image/webp"),
}


def stored_files(services: Services) -> list[Path]:
    """Every file kept in the content-addressed directory (temporary files excluded)."""
    root = services.files.files_dir
    if not root.exists():
        return []
    return [path for path in root.rglob("*") if path.is_file() and path.parent.name != "tmp"]


def temporary_files(services: Services) -> list[Path]:
    tmp = services.files.files_dir / "tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


def file_rows(services: Services) -> int:
    with services.database.transaction(commit=False) as tx:
        count: int = tx.execute("SELECT COUNT(*) AS n FROM files").fetchone()["n"]
    return count


@pytest.mark.parametrize("kind", list(IMAGES))
def test_each_image_format_uploads_without_an_api_key(
    api: Api, client: TestClient[Any], services: Services, kind: str
) -> None:
    content, media_type = IMAGES[kind]
    url = upload_url(api)
    assert url.startswith("http://testserver.local/uploads/")

    response = send(client, url, content, media_type)

    assert response.status_code == 200, response.text
    body = response.json()
    digest = hashlib.sha256(content).hexdigest()
    assert body == {
        "storageId": body["storageId"],
        "contentType": media_type,
        "size": len(content),
        "sha256": digest,
    }
    assert body["storageId"].startswith("img_")
    kept = services.files.files_dir / digest[:2] / digest
    assert kept.read_bytes() == content
    assert temporary_files(services) == []
    services.files.check_reference_images(api.project_id, [body["storageId"]])


def test_upload_url_answers_an_expiry_fifteen_minutes_ahead(api: Api) -> None:
    before = utc_now()
    response = api.post("/files/upload-url", {"contentType": "image/webp"})
    after = utc_now()
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"uploadUrl", "expiresAt"}
    assert body["expiresAt"].endswith("Z")
    expires = datetime.fromisoformat(body["expiresAt"])
    lifetime = timedelta(minutes=15)
    assert before + lifetime - timedelta(milliseconds=1) <= expires <= after + lifetime


def test_upload_urls_are_distinct_and_unguessable(api: Api) -> None:
    urls = {upload_url(api) for _ in range(5)}
    assert len(urls) == 5
    assert all(len(url.rsplit("/", 1)[1]) >= 43 for url in urls)


def test_only_the_token_hash_is_stored(api: Api, services: Services) -> None:
    token = upload_url(api).rsplit("/", 1)[1]
    with services.database.transaction(commit=False) as tx:
        hashes = [row["token_hash"] for row in tx.execute("SELECT token_hash FROM upload_slots").fetchall()]
    assert token not in hashes
    assert hashlib.sha256(token.encode()).hexdigest() in hashes


@pytest.mark.sqlite_only
def test_upload_url_needs_an_api_key(client: TestClient[Any]) -> None:
    response = client.post("/api/v1/files/upload-url", json={})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contentType": "text/plain"}, "contentType"),
        ({"contentType": 5}, "contentType"),
        ({"filename": "cat.png"}, "filename"),
    ],
)
def test_upload_url_refuses_bad_bodies(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.post("/files/upload-url", body)
    assert response.status_code == 400, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_the_content_decides_the_type_not_the_header(api: Api, client: TestClient[Any]) -> None:
    response = send(client, upload_url(api), PNG, "image/jpeg")
    assert response.status_code == 200, response.text
    assert response.json()["contentType"] == "image/png"


def test_a_non_image_with_an_image_header_is_415_and_stores_nothing(
    api: Api, client: TestClient[Any], services: Services
) -> None:
    url = upload_url(api)
    for content in (
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"%PDF-1.7\n",
        b"",
        b"RIFF\x00\x00\x00\x00WAVE",
    ):
        response = send(client, url, content, "image/png")
        assert response.status_code == 415, response.text
        assert response.json()["status"] == 415
    assert stored_files(services) == []
    assert temporary_files(services) == []
    assert file_rows(services) == 0
    # A refused body does not use the URL up: the right file can still be sent to it.
    assert send(client, url, PNG).status_code == 200


def test_bytes_not_matching_the_requested_content_type_are_415(
    api: Api, client: TestClient[Any], services: Services
) -> None:
    url = upload_url(api, {"contentType": "image/png"})
    response = send(client, url, GIF89, "image/png")
    assert response.status_code == 415, response.text
    assert file_rows(services) == 0
    assert stored_files(services) == []
    assert send(client, url, PNG).status_code == 200


def test_an_oversized_upload_is_413_and_stores_nothing(
    api: Api, client: TestClient[Any], services: Services
) -> None:
    url = upload_url(api)
    response = send(client, url, PNG + b"\x00" * (MAX_UPLOAD_BYTES + 1 - len(PNG)))
    assert response.status_code == 413, response.text
    assert response.json()["status"] == 413
    assert stored_files(services) == []
    assert temporary_files(services) == []
    assert file_rows(services) == 0


def test_exactly_ten_mebibytes_is_accepted(api: Api, client: TestClient[Any]) -> None:
    response = send(client, upload_url(api), PNG + b"\x00" * (MAX_UPLOAD_BYTES - len(PNG)))
    assert response.status_code == 200, response.text
    assert response.json()["size"] == MAX_UPLOAD_BYTES


def test_a_used_url_is_409(api: Api, client: TestClient[Any], services: Services) -> None:
    url = upload_url(api)
    first = send(client, url, PNG)
    assert first.status_code == 200

    again = send(client, url, JPEG, "image/jpeg")

    assert again.status_code == 409, again.text
    assert "already been used" in again.json()["detail"]
    assert file_rows(services) == 1


def test_an_expired_url_is_409(api: Api, client: TestClient[Any], services: Services) -> None:
    url = upload_url(api)
    services.files.clock = lambda: utc_now() + timedelta(minutes=15, seconds=1)

    response = send(client, url, PNG)

    assert response.status_code == 409, response.text
    assert "expired" in response.json()["detail"]
    assert file_rows(services) == 0


def test_a_url_still_works_just_before_it_expires(
    api: Api, client: TestClient[Any], services: Services
) -> None:
    url = upload_url(api)
    services.files.clock = lambda: utc_now() + timedelta(minutes=14, seconds=50)
    assert send(client, url, PNG).status_code == 200


@pytest.mark.parametrize("token", ["x" * 43, "nope", "a" * 2000])
def test_an_unknown_url_is_404(client: TestClient[Any], token: str) -> None:
    response = send(client, f"/uploads/{token}", PNG)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_url_from_a_revoked_key_still_works_as_its_own_credential(
    api: Api, client: TestClient[Any], services: Services
) -> None:
    """The URL is the credential, and the upload route never looks at an API key."""
    url = upload_url(api)
    response = client.post(url, content=PNG, headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200, response.text


def test_the_same_bytes_twice_share_one_file_but_get_two_ids(
    api: Api, other_api: Api, client: TestClient[Any], services: Services
) -> None:
    first = send(client, upload_url(api), PNG).json()
    second = send(client, upload_url(other_api), PNG).json()
    assert first["storageId"] != second["storageId"]
    assert first["sha256"] == second["sha256"]
    assert len(stored_files(services)) == 1
    services.files.check_reference_images(api.project_id, [first["storageId"]])
    services.files.check_reference_images(other_api.project_id, [second["storageId"]])


def test_reference_images_must_be_this_projects_images(
    api: Api, other_api: Api, client: TestClient[Any], services: Services
) -> None:
    mine = send(client, upload_url(api), PNG).json()["storageId"]
    theirs = send(client, upload_url(other_api), JPEG, "image/jpeg").json()["storageId"]
    files = services.files

    files.check_reference_images(api.project_id, [])
    files.check_reference_images(api.project_id, [mine, mine])
    with pytest.raises(InvalidInput) as foreign:
        files.check_reference_images(api.project_id, [mine, theirs])
    assert foreign.value.field == "referenceImageIds[1]"
    with pytest.raises(InvalidInput) as unknown:
        files.check_reference_images(api.project_id, ["img_" + "0" * 32])
    assert unknown.value.field == "referenceImageIds[0]"
    assert "no uploaded file" in unknown.value.message
    # A foreign id is refused exactly as an unknown one: no hint that it exists elsewhere.
    assert foreign.value.message.replace(theirs, "ID") == unknown.value.message.replace(
        "img_" + "0" * 32, "ID"
    )


def test_a_stored_file_that_is_not_an_image_is_not_a_reference_image(api: Api, services: Services) -> None:
    with services.database.transaction() as tx:
        tx.execute(
            "INSERT INTO files (storage_id, project_id, sha256, content_type, size, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            ("file_notes", api.project_id, "0" * 64, "text/plain", 3, "2026-11-28T00:00:00.000000Z"),
        )
    with pytest.raises(InvalidInput, match="not an image") as error:
        services.files.check_reference_images(api.project_id, ["file_notes"])
    assert error.value.field == "referenceImageIds[0]"


def test_two_concurrent_uploads_to_one_url_cannot_both_succeed(api: Api, services: Services) -> None:
    token = upload_url(api).rsplit("/", 1)[1]
    files = services.files
    barrier = threading.Barrier(2)
    results: list[StoredFile | Exception] = []

    def upload(content: bytes) -> None:
        incoming = files.receive()
        try:
            incoming.write(content)
            barrier.wait()
            results.append(files.accept(token, incoming))
        except Exception as error:
            results.append(error)
        finally:
            incoming.discard()

    threads = [threading.Thread(target=upload, args=(content,)) for content in (PNG, GIF89)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(type(result).__name__ for result in results) == ["Conflict", "StoredFile"]
    assert any(isinstance(result, Conflict) for result in results)
    assert file_rows(services) == 1
    assert len(stored_files(services)) == 1
    assert temporary_files(services) == []


def test_the_body_is_streamed_in_chunks_and_an_oversized_one_is_cut_off_early(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drive the ASGI app directly, so the body arrives in chunks without a Content-Length."""
    token = upload_url(api).rsplit("/", 1)[1]
    chunk = 64 * 1024
    total_chunks = (MAX_UPLOAD_BYTES // chunk) * 2
    written: list[int] = []
    original_write = Incoming.write

    def recording_write(self: Incoming, data: bytes) -> None:
        written.append(len(data))
        original_write(self, data)

    monkeypatch.setattr(Incoming, "write", recording_write)
    app = create_app(services=services)
    sent_chunks = 0
    answer: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent_chunks
        sent_chunks += 1
        body = PNG + b"\x00" * (chunk - len(PNG)) if sent_chunks == 1 else b"\x00" * chunk
        return {"type": "http.request", "body": body, "more_body": sent_chunks < total_chunks}

    async def send_message(message: dict[str, Any]) -> None:
        answer.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/uploads/{token}",
        "raw_path": f"/uploads/{token}".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"image/png"), (b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send_message))  # type: ignore[arg-type]

    assert answer[0]["status"] == 413
    assert max(written) <= chunk
    assert sent_chunks <= MAX_UPLOAD_BYTES // chunk + 1
    assert file_rows(services) == 0
    assert temporary_files(services) == []

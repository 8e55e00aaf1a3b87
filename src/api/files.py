"""Reference-image uploads: an API-keyed route hands out single-use URLs, a keyless route takes the bytes."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from anyio import to_thread
from litestar import Controller, Request, post
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import JSONBody, PathParameter
from msgspec import Struct

from api.auth import BackendDep, PrincipalDep
from api.errors import WRITE_ERRORS, UnsupportedMediaType, problem_responses
from api.schemas import Body
from domain.files import MAX_UPLOAD_BYTES, NotAnImage, UploadTooLarge
from projections.documents import iso_ms

UPLOADS_PATH = "/uploads"

ImageType = Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
Token = Annotated[str, PathParameter(description="The secret part of the upload URL")]


class RequestUploadUrl(Body):
    content_type: ImageType | None = None


class UploadUrl(Struct, rename="camel"):
    """Where to send the bytes: absolute, single use, no API key needed, valid until `expiresAt`."""

    upload_url: str
    expires_at: str


class UploadedFile(Struct, rename="camel"):
    """Pass `storageId` as one of `referenceImageIds` in `runs/start`."""

    storage_id: str
    content_type: str
    size: int
    sha256: str


class FileController(Controller):
    """Asking for an upload URL is an API call like any other: it acts in the key's project."""

    path = "/files"
    tags = ["files"]

    @post(
        "/upload-url",
        sync_to_thread=True,
        responses=WRITE_ERRORS,
        status_code=200,
        summary="Get a single-use upload URL",
    )
    def upload_url(
        self,
        request: Request[Any, Any, Any],
        backend: BackendDep,
        principal: PrincipalDep,
        data: JSONBody[RequestUploadUrl],
    ) -> UploadUrl:
        slot = backend.files.create_upload_slot(principal.project_id, data.content_type)
        base = str(request.base_url).rstrip("/")
        return UploadUrl(upload_url=f"{base}{UPLOADS_PATH}/{slot.token}", expires_at=iso_ms(slot.expires_at))


@post(
    f"{UPLOADS_PATH}/{{token:str}}",
    status_code=200,
    request_max_body_size=MAX_UPLOAD_BYTES,
    responses=problem_responses(404, 409, 413, 415),
    tags=["files"],
    summary="Upload an image to a URL from files/upload-url",
    description="The raw bytes of one PNG, JPEG, GIF or WebP image (checked by content), at most 10 MiB. "
    "The URL is the credential: no API key. Unknown URL 404; used or expired 409; not an image 415; "
    "too large 413. A refused body leaves the URL usable until it expires.",
)
async def upload(request: Request[Any, Any, Any], backend: BackendDep, token: Token) -> UploadedFile:
    """Stream the body to disk chunk by chunk; the slot is claimed only once the bytes are accepted."""
    files = backend.files
    await to_thread.run_sync(files.check_slot, token)
    incoming = await to_thread.run_sync(files.receive)
    try:
        async for chunk in request.stream():
            if chunk:
                incoming.write(chunk)
        stored = await to_thread.run_sync(partial(files.accept, token, incoming))
    except UploadTooLarge as error:
        raise RequestEntityTooLarge(error.detail) from error
    except NotAnImage as error:
        raise UnsupportedMediaType(error.detail) from error
    finally:
        incoming.discard()
    return UploadedFile(
        storage_id=stored.storage_id, content_type=stored.content_type, size=stored.size, sha256=stored.sha256
    )

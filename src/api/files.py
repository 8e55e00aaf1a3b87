"""Reference-image uploads: an API-keyed route hands out single-use URLs, a keyless route takes the bytes."""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Any, Literal

from anyio import to_thread
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import JSONBody, PathParameter

from api.dependencies import PRINCIPAL, PrincipalDep, from_services
from api.errors import UnsupportedMediaType, problem_responses
from api.routes import write
from api.schemas import Body
from api.upload_body import BinaryUploadOperation
from composition.settings import Settings, host_name
from domain.camel import CamelStruct
from domain.errors import InvalidInput
from domain.formats import Timestamp, openapi
from projections.documents import iso_ms
from store.files import MAX_UPLOAD_BYTES, Files, NotAnImage, UploadTooLarge

UPLOADS_PATH = "/uploads"
HOST_HEADER = re.compile(
    r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?"
)

ImageType = Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
Token = Annotated[str, PathParameter(description="The secret part of the upload URL")]


class RequestUploadUrl(Body):
    content_type: ImageType | None = None


class UploadUrl(CamelStruct):
    """Where to send the bytes: absolute, single use, no API key needed, valid until `expiresAt`."""

    upload_url: Annotated[str, openapi("Where to POST the image's bytes", format="uri")]
    expires_at: Timestamp


class UploadedFile(CamelStruct):
    """Pass `storageId` as one of `referenceImageIds` in `runs/start`."""

    storage_id: str
    content_type: str
    size: int
    sha256: str


class FileController(Controller):
    """Asking for an upload URL is an API call like any other: it acts in the key's project."""

    path = "/files"
    tags = ["files"]
    dependencies = {
        "principal": PRINCIPAL,
        "files": from_services(lambda services: services.files),
        "settings": from_services(lambda services: services.settings),
    }

    @write("/upload-url", "Get a single-use upload URL")
    def create_upload_url(
        self,
        request: Request[Any, Any, Any],
        files: NamedDependency[Files],
        settings: NamedDependency[Settings],
        principal: PrincipalDep,
        data: JSONBody[RequestUploadUrl],
    ) -> UploadUrl:
        base = upload_base(request, settings)
        slot = files.create_upload_slot(principal.project_id, data.content_type)
        return UploadUrl(upload_url=f"{base}{UPLOADS_PATH}/{slot.token}", expires_at=iso_ms(slot.expires_at))


def upload_base(request: Request[Any, Any, Any], settings: Settings) -> str:
    """WFS_PUBLIC_URL, else this server as the client named it, if that name is one it answers to.

    A Host header is the client's word, and an upload URL goes to whoever the client shows it to:
    built from any Host, it would send someone else's bytes to a host of the sender's choosing.
    """
    if settings.public_url:
        return settings.public_url
    host = request.headers.get("host")
    if host is not None and not host_allowed(host, settings.allowed_hosts):
        raise InvalidInput(
            "Host",
            f"{host!r} is not a name this server answers to; set WFS_PUBLIC_URL, or add the host"
            " to WFS_ALLOWED_HOSTS",
        )
    return str(request.base_url).rstrip("/")


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a Host header (`name[:port]`) names one of `allowed` (any port; `*` allows any name)."""
    match = HOST_HEADER.fullmatch(host)
    if match is None:
        return False
    return "*" in allowed or host_name(match.group("name")) in allowed


@post(
    f"{UPLOADS_PATH}/{{token:str}}",
    status_code=200,
    request_max_body_size=MAX_UPLOAD_BYTES,
    responses=problem_responses(404, 409, 413, 415),
    tags=["files"],
    dependencies={"files": from_services(lambda services: services.files)},
    operation_class=BinaryUploadOperation,
    summary="Upload an image to a URL from files/upload-url",
    description="The raw bytes of one PNG, JPEG, GIF or WebP image (checked by content), at most 10 MiB. "
    "The URL is the credential: no API key. Unknown URL 404; used or expired 409; not an image 415; "
    "too large 413. A refused body leaves the URL usable until it expires.",
)
async def upload_file(
    request: Request[Any, Any, Any], files: NamedDependency[Files], token: Token
) -> UploadedFile:
    """Stream the body to disk chunk by chunk; the slot is claimed only once the bytes are accepted."""
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

"""The upload route's request body in the OpenAPI document: Litestar documents a `data` parameter, and
the upload route has none (it streams the raw bytes itself)."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

UPLOAD_MEDIA_TYPE = "application/octet-stream"
UPLOAD_BODY = RequestBody(
    description="The image's raw bytes; any Content-Type is accepted, the type is read from the bytes.",
    required=True,
    content={
        UPLOAD_MEDIA_TYPE: OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, content_media_type=UPLOAD_MEDIA_TYPE
            )
        )
    },
)


@dataclass
class BinaryUploadOperation(Operation):
    """The upload route's operation, declaring the body it streams."""

    def __post_init__(self) -> None:
        self.request_body = UPLOAD_BODY

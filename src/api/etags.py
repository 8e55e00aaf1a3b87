"""A workflow's version as an ETag: what `get` answers with, and what a write may be conditional on."""

from __future__ import annotations

from typing import Annotated

from litestar.datastructures import ResponseHeader
from litestar.params import HeaderParameter

from domain.errors import InvalidInput
from domain.workflow import parse_version_number

ETAG = ResponseHeader(
    name="ETag",
    value='"3"',  # documents the header's type; each answer sets its own
    documentation_only=True,
    required=True,
    description='The workflow\'s version as a strong ETag, such as `"3"`: send it back as `If-Match` '
    "(or the number as `expectedVersion`) to make a write conditional on it.",
)
"""The ETag header as the OpenAPI document declares it on the routes that send it."""

IfMatch = Annotated[
    str | None,
    HeaderParameter(name="If-Match", description="The ETag from `get`: refuse the write on a mismatch"),
]


def etag(version: int) -> dict[str, str]:
    """The headers of an answer showing this version of a workflow."""
    return {"ETag": f'"{version}"'}


def expected(body_version: int | None, if_match: str | None) -> int | None:
    """The version a write is conditional on, from the body or an If-Match ETag."""
    if body_version is not None or if_match is None:
        return body_version
    tag = if_match.strip()
    if tag == "*":
        return None
    version = parse_version_number(tag.removeprefix("W/").strip('"'))
    if version is None:
        raise InvalidInput("If-Match", 'must be an ETag from get, such as "3"')
    return version

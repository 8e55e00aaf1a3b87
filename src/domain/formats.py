"""String types whose OpenAPI description names their format, so clients generate the right types.

Litestar copies the `extra` entry of a msgspec `Meta(extra_json_schema=...)` onto the field's OpenAPI
schema (its `schema_extra`); plain msgspec keys such as `description` map one to one. The wire value
stays a string: timestamps keep the service's one format, RFC 3339 UTC with milliseconds.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

URL_MAX = 2048


def openapi(description: str, **schema: Any) -> Meta:
    """A `Meta` whose `schema` keywords (OpenAPI Schema attributes) reach the generated document."""
    return Meta(description=description, extra_json_schema={"extra": schema})


Timestamp = Annotated[
    str,
    openapi("An RFC 3339 UTC time with milliseconds, such as 2026-11-28T09:15:02.123Z", format="date-time"),
]
Url = Annotated[
    str,
    Meta(max_length=URL_MAX),
    openapi("An absolute https URL, such as https://github.com/acme/app", format="uri"),
]

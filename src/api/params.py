"""Query parameters several routes share, declared once so they document the same everywhere."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from api.schemas import MAX_ID_LENGTH
from domain.workflow import MAX_VERSION

WorkflowId = Annotated[str, QueryParameter(max_length=MAX_ID_LENGTH, description="The workflow's id")]
RunId = Annotated[str, QueryParameter(max_length=MAX_ID_LENGTH, description="The run's id")]
Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size, 1 to 100")]
Cursor = Annotated[str | None, QueryParameter(description="`nextCursor` of the previous page")]
VersionNumber = Annotated[
    int | None, QueryParameter(ge=1, le=MAX_VERSION, description="A content version, 1 to 2^31 - 1")
]

"""Query parameters several routes share, declared once so they document the same everywhere."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

WorkflowId = Annotated[str, QueryParameter(description="The workflow's id")]
Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size, 1 to 100")]
Cursor = Annotated[str | None, QueryParameter(description="`nextCursor` of the previous page")]

"""The read baseline: a minimal Litestar app answering one constant page, as the service's list is shaped.

The page is a real first page of the service's `list` (50 items), saved by the suite to the file
named by BENCH_PAGE_FILE and decoded once at start; each request encodes it again, as a handler
returning data does. Started by the suite under the same ASGI server as `workflow-service serve`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, get


def create_app() -> Litestar:
    page: dict[str, Any] = msgspec.json.decode(Path(os.environ["BENCH_PAGE_FILE"]).read_bytes())

    @get("/list", sync_to_thread=False)
    def constant_list() -> dict[str, Any]:
        return page

    return Litestar(route_handlers=[constant_list], openapi_config=None)

"""The real app over HTTP as one project's caller, and the requests many tests make through it."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from tests.support.data import STEPS


class Api:
    """An HTTP client of the real app, calling as one project's API key."""

    def __init__(self, client: TestClient[Any], key: str, project_id: str) -> None:
        self.client = client
        self.key = key
        self.project_id = project_id
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params=params, headers=self.headers)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(f"/api/v1{path}", json=body, headers={**self.headers, **(headers or {})})

    def create(self, name: str = "Release hardening", **fields: Any) -> dict[str, Any]:
        body = {"name": name, "pipelineSteps": STEPS, **fields}
        response = self.post("/workflows/create", body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


def every_item(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item a paged GET route lists under these parameters, following the cursor page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page_params = params if cursor is None else {**params, "cursor": cursor}
        response = api.get(path, **page_params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["hasMore"] == (page["nextCursor"] is not None)
        items += page["items"]
        if not page["hasMore"]:
            return items
        cursor = page["nextCursor"]


def history(api: Api, workflow_id: str, **params: Any) -> list[dict[str, Any]]:
    """Every history item of a workflow."""
    return every_item(api, "/workflows/history", id=workflow_id, **params)


def audit_log(api: Api, **params: Any) -> list[dict[str, Any]]:
    """Every audit item the filters let through."""
    return every_item(api, "/events", **params)


def start_run(
    api: Api, workflow_id: str, prompt: str = "Fix the flaky test", **fields: Any
) -> dict[str, Any]:
    response = api.post("/runs/start", {"workflowId": workflow_id, "prompt": prompt, **fields})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def upload_url(api: Api, body: dict[str, Any] | None = None) -> str:
    response = api.post("/files/upload-url", {} if body is None else body)
    assert response.status_code == 200, response.text
    url: str = response.json()["uploadUrl"]
    return url


def send(client: TestClient[Any], url: str, content: bytes, content_type: str = "image/png") -> Any:
    """POST the raw bytes the way a browser would: no API key, just a Content-Type."""
    return client.post(url, content=content, headers={"Content-Type": content_type})

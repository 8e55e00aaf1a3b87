"""scripts/audit_changes.py against a real server: who changed what between two dates, as CSV."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import Server

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit_changes.py"


def run_script(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    assert server.key is not None
    return subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(SCRIPT), "--url", server.base_url, "--key", server.key, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def post(client: httpx.Client, route: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        f"/api/v1{route}", json=body, headers={"X-Request-Id": f"req-{route}-{time.time_ns()}"}
    )
    assert response.status_code in (200, 201), response.text
    found: dict[str, Any] = response.json()
    return found


def moment(client: httpx.Client) -> str:
    """A time strictly between the events before and after it (the log compares to the millisecond)."""
    time.sleep(0.01)
    now = time.time_ns()  # one reading: seconds and milliseconds from two could straddle a second
    stamp = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 1_000_000_000))
        + f".{now // 1_000_000 % 1000:03d}Z"
    )
    time.sleep(0.01)
    return stamp


def test_the_script_lists_each_changed_field_with_who_and_when(
    one_process_server: Server, tmp_path: Path
) -> None:
    server = one_process_server
    with server.client() as client:
        before = post(
            client, "/workflows/create", {"name": "Before", "pipelineSteps": [{"type": "designer"}]}
        )
        since = moment(client)
        workflow = post(
            client, "/workflows/create", {"name": "Nightly", "pipelineSteps": [{"type": "designer"}]}
        )
        workflow_id = workflow["id"]
        steps = [{"type": "designer", "cliId": "claude"}, {"type": "checker"}]
        post(
            client,
            "/workflows/update",
            {"workflowId": workflow_id, "description": "new", "pipelineSteps": steps},
        )
        post(client, "/workflows/rename", {"workflowId": workflow_id, "name": "Nightly build"})
        post(client, "/workflows/update", {"workflowId": before["id"], "maxIterations": 5})
        for number in range(120):  # more than one page of the audit log
            post(client, "/workflows/rename", {"workflowId": before["id"], "name": f"Before {number}"})
        until = moment(client)
        post(client, "/workflows/rename", {"workflowId": workflow_id, "name": "After the window"})
        log = client.get("/api/v1/events", params={"workflowId": workflow_id}).json()["items"]

    done = run_script(server, "--since", since, "--until", until)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0]) == [
        "occurredAt",
        "keyName",
        "keyId",
        "workflowId",
        "type",
        "field",
        "from",
        "to",
        "requestId",
    ]
    assert len(rows) == 1 + 2 + 1 + 1 + 120  # create; update: 2 fields; rename; update; the renames

    mine = [row for row in rows if row["workflowId"] == workflow_id]
    assert [(row["type"], row["field"]) for row in mine] == [
        ("workflow.created", ""),
        ("workflow.updated", "description"),
        ("workflow.updated", "pipelineSteps"),
        ("workflow.renamed", "name"),
    ]
    description, steps_row, rename = mine[1], mine[2], mine[3]
    assert (description["from"], description["to"]) == ("null", "new")
    assert steps_row["from"].startswith('[{"type":"designer"')
    assert '"checker"' in steps_row["to"]
    assert (rename["from"], rename["to"]) == ("Nightly", "Nightly build")
    assert rename["keyName"] == "default key"
    assert rename["keyId"] == log[2]["actor"]["keyId"]
    assert rename["occurredAt"] == log[2]["occurredAt"]
    assert rename["requestId"] == log[2]["requestId"]
    assert rename["requestId"].startswith("req-/workflows/rename")

    out = tmp_path / "changes.csv"
    only = run_script(
        server, "--since", since, "--until", until, "--workflow", workflow_id, "--out", str(out)
    )
    assert only.returncode == 0, only.stderr
    assert list(csv.DictReader(out.open())) == mine


def test_the_script_says_what_went_wrong(one_process_server: Server) -> None:
    server = one_process_server
    done = run_script(server, "--since", "yesterday", "--until", "2030-01-01T00:00:00Z")
    assert done.returncode != 0
    assert "400" in done.stderr
    assert "since" in done.stderr

#!/usr/bin/env python3
"""Who changed what between two dates, as CSV: a starting point for your own audit queries.

Reads the project's audit log (`GET /api/v1/events`) page by page and writes one CSV row per
changed field of every update, rename and revert (`from` and `to` as JSON), and one row for every
other event (create, duplicate, delete, restore, erase, run events) with the field columns empty.
Only the Python standard library is used, so the file can be copied and changed freely: filter on
`--workflow`, on an API key (`actor=KEY_ID` in `query` below), or on event types.

    python scripts/audit_changes.py --url https://workflows.example.com --key "$WFS_API_KEY" \\
        --since 2026-11-01T00:00:00Z --until 2026-12-01T00:00:00Z [--workflow ID] [--out changes.csv]

`--since` is inclusive, `--until` exclusive (RFC 3339 times, with an offset or `Z`).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import IO, Any

COLUMNS = ("occurredAt", "keyName", "keyId", "workflowId", "type", "field", "from", "to", "requestId")
PAGE_SIZE = 100
CHANGE_TYPES = frozenset({"workflow.updated", "workflow.renamed", "workflow.reverted"})


def events(url: str, key: str, query: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Every audit-log item that matches `query`, following `nextCursor` until the last page."""
    params = {**query, "limit": str(PAGE_SIZE)}
    while True:
        page = get_json(f"{url.rstrip('/')}/api/v1/events?{urllib.parse.urlencode(params)}", key)
        yield from page["items"]
        if not page.get("nextCursor"):
            return
        params["cursor"] = page["nextCursor"]


def get_json(address: str, key: str) -> Any:
    request = urllib.request.Request(address, headers={"Authorization": f"Bearer {key}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the operator's URL
            return json.load(response)
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise SystemExit(f"audit_changes: {error.code} from {address}: {detail}") from None
    except urllib.error.URLError as error:
        raise SystemExit(f"audit_changes: cannot reach {address}: {error.reason}") from None


def rows(item: dict[str, Any]) -> Iterator[dict[str, str]]:
    """One row per changed field of a content change; one row, without a field, for any other event."""
    common = {
        "occurredAt": item["occurredAt"],
        "keyName": item["actor"]["keyName"],
        "keyId": item["actor"]["keyId"],
        "workflowId": item["workflowId"],
        "type": item["type"],
        "requestId": item.get("requestId") or "",
    }
    changes = item["data"].get("changes") if item["type"] in CHANGE_TYPES else None
    if not changes:
        yield {**common, "field": "", "from": "", "to": ""}
        return
    for name, change in changes.items():
        yield {**common, "field": name, "from": as_text(change["from"]), "to": as_text(change["to"])}


def as_text(value: Any) -> str:
    """Strings as they are, anything else (lists, objects, numbers, null) as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def write_csv(items: Iterator[dict[str, Any]], out: IO[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    written = 0
    for item in items:
        for row in rows(item):
            writer.writerow(row)
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the service's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="an API key of the project (a read key is enough)")
    parser.add_argument("--since", required=True, help="RFC 3339 time, inclusive")
    parser.add_argument("--until", required=True, help="RFC 3339 time, exclusive")
    parser.add_argument("--workflow", help="only this workflow's events")
    parser.add_argument("--out", help="write the CSV here instead of standard output")
    args = parser.parse_args(argv)
    query = {"since": args.since, "until": args.until}
    if args.workflow:
        query["workflowId"] = args.workflow
    items = events(args.url, args.key, query)
    if args.out is None:
        count = write_csv(items, sys.stdout)
    else:
        with open(args.out, "w", newline="", encoding="utf-8") as out:
            count = write_csv(items, out)
    print(f"audit_changes: {count} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak server memory under concurrent 2 MiB bodies built to amplify: nested empty arrays in graph data.

Run: .venv/bin/python scripts/bench_amplification.py [--concurrency 16] [--rounds 2] [--shape NAME ...]

For each body shape a fresh `workflow-service serve` starts on a SQLite store in a temporary
directory; once it is idle its RSS is read, then `--concurrency` clients each send `--rounds` copies
of the body at once. The peak is VmHWM (the kernel's high-water mark of resident memory) of the
server process and every process under it, read from /proc after the load. Linux only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from api.json_limits import MAX_CONTAINERS, MAX_MEMBERS
from bench.server import memory_mb, serve

BODY_LIMIT = 2 * 1024 * 1024
STEP = {"type": "designer", "cliId": "claude"}


def graph_body(data: bytes) -> bytes:
    """A create body whose one graph node carries `data` verbatim."""
    head = json.dumps({"name": "amplifier", "pipelineSteps": [STEP]}, separators=(",", ":"))[:-1]
    return f'{head},"workflowGraph":{{"nodes":[{{"id":"a","data":'.encode() + data + b"}]}}"


def fill(unit: bytes, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    """`[unit,unit,...]` as long as the body stays under the limit."""
    room = BODY_LIMIT - len(graph_body(b"")) - len(opener) - len(closer) - 1
    count = room // (len(unit) + 1)
    return opener + b",".join([unit] * count) + closer


def deep() -> bytes:
    """One chain of nested arrays, about a million levels."""
    depth = (BODY_LIMIT - len(graph_body(b"")) - 1) // 2
    return graph_body(b"[" * depth + b"]" * depth)


def wide() -> bytes:
    """About 700,000 empty arrays side by side."""
    return graph_body(fill(b"[]"))


def wide_nested() -> bytes:
    """About 350,000 arrays each holding two nested levels of empty arrays."""
    return graph_body(fill(b"[[[]]]"))


def deep_and_wide() -> bytes:
    """Chains 60 levels deep (within the depth bound), as many as fit."""
    return graph_body(fill(b"[" * 60 + b"]" * 60))


def under_the_caps() -> bytes:
    """The worst body the edge accepts: just under the container cap, the rest padded with a string."""
    arrays = b",".join([b"[]"] * (MAX_CONTAINERS - 10))
    padding = BODY_LIMIT - len(graph_body(b"")) - len(arrays) - 16
    return graph_body(b'{"a":[' + arrays + b'],"p":"' + b"x" * padding + b'"}')


def many_floats() -> bytes:
    """Floats just under the value cap, each decoded to its own object."""
    return graph_body(b"[" + b",".join([b"1.5"] * (MAX_MEMBERS - 100)) + b"]")


def many_zeros() -> bytes:
    """About a million one-digit values (over the value cap)."""
    return graph_body(fill(b"0"))


def largest_graph() -> bytes:
    """A legitimate maximal graph: 5,000 nodes with position and data, 20,000 edges."""
    nodes = [
        {"id": f"n{i}", "type": "step", "position": {"x": i * 10, "y": i % 9}, "data": {"label": f"S{i}"}}
        for i in range(5_000)
    ]
    edges = [
        {"id": f"e{i}", "source": f"n{i % 5_000}", "target": f"n{(i * 7) % 5_000}"} for i in range(20_000)
    ]
    body = {"name": "graph", "pipelineSteps": [STEP], "workflowGraph": {"nodes": nodes, "edges": edges}}
    return json.dumps(body, separators=(",", ":")).encode()


SHAPES: dict[str, Callable[[], bytes]] = {
    "deep": deep,
    "wide": wide,
    "wide-nested": wide_nested,
    "deep-and-wide": deep_and_wide,
    "under-the-caps": under_the_caps,
    "many-floats": many_floats,
    "many-zeros": many_zeros,
    "largest-graph": largest_graph,
}


def send_all(base: str, key: str, body: bytes, concurrency: int, rounds: int, timeout: float) -> Counter[Any]:
    """Statuses of every answer; a request that times out or fails counts under its error's name."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def send(http: httpx.Client) -> Any:
        try:
            return http.post("/api/v1/workflows/create", content=body).status_code
        except httpx.HTTPError as error:
            return type(error).__name__

    def client(_: int) -> list[Any]:
        with httpx.Client(base_url=base, headers=headers, timeout=timeout) as http:
            return [send(http) for _ in range(rounds)]

    with ThreadPoolExecutor(concurrency) as pool:
        return Counter(status for statuses in pool.map(client, range(concurrency)) for status in statuses)


def measure(name: str, body: bytes, concurrency: int, rounds: int, timeout: float) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as directory,
        serve(f"sqlite:///{Path(directory) / 'store.db'}", Path(directory)) as server,
    ):
        base, key, pid = server.base, server.printed_key or "", server.process.pid
        httpx.post(  # one ordinary write first, so the idle figure includes a warmed-up write path
            f"{base}/api/v1/workflows/create",
            json={"name": "warm-up", "pipelineSteps": [STEP]},
            headers={"Authorization": f"Bearer {key}"},
        ).raise_for_status()
        idle = memory_mb(pid, "VmRSS")
        idle_peak = memory_mb(pid, "VmHWM")
        started = time.perf_counter()
        statuses = send_all(base, key, body, concurrency, rounds, timeout)
        seconds = time.perf_counter() - started
        time.sleep(0.5)
        return {
            "shape": name,
            "bodyMiB": round(len(body) / 2**20, 2),
            "statuses": dict(statuses),
            "idleRssMB": round(idle, 1),
            "idlePeakMB": round(idle_peak, 1),
            "peakRssMB": round(memory_mb(pid, "VmHWM"), 1),
            "seconds": round(seconds, 2),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600, help="seconds a client waits for an answer")
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES), help="default: every shape")
    args = parser.parse_args()
    print(f"{args.concurrency} concurrent clients x {args.rounds} bodies each; memory of the server tree")
    print(f"{'shape':<16}{'body MiB':>9}{'idle MB':>9}{'peak MB':>9}{'seconds':>9}  statuses")
    for name in args.shape or list(SHAPES):
        body = SHAPES[name]()
        assert len(body) <= BODY_LIMIT, (name, len(body))
        row = measure(name, body, args.concurrency, args.rounds, args.timeout)
        print(
            f"{row['shape']:<16}{row['bodyMiB']:>9}{row['idleRssMB']:>9}{row['peakRssMB']:>9}"
            f"{row['seconds']:>9}  {row['statuses']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

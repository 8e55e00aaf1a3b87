"""Real server processes for benchmarks: the service (`workflow-service serve`) and the baseline app.

One helper starts either, waits until it answers, keeps draining what it prints (a full pipe would
block its writes) and stops it; memory is read from /proc for the process and all its children.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

MASTER_KEY = "0f" * 32
"""A fixed key-encryption key: PostgreSQL stores need one, and benchmark stores hold nothing secret."""
PACKAGE = __package__ or "bench"
IMPORT_ROOT = Path(__file__).resolve().parents[len(PACKAGE.split("."))]
"""The folder the package is imported from (the repository, or scripts/ for the scripts beside it)."""
START_SECONDS = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_env(database_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of every service process a benchmark starts: no rate limit, a fixed KEK."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "WFS_RATE_LIMIT": "0",  # a benchmark sends thousands of requests a minute from one key, on purpose
        "WFS_MASTER_KEY": os.environ.get("WFS_MASTER_KEY", MASTER_KEY),
        "WFS_FILES_DIR": str(workdir / "files"),
        **extra,
    }


@dataclass
class Server:
    """A running server process: where it answers, and the API key it printed, if any."""

    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def printed_key(self) -> str | None:
        return next((line.strip() for line in self.lines if line.strip().startswith("wfs_")), None)

    def memory_mb(self, field_name: str = "VmHWM") -> float:
        """VmHWM (peak), VmRSS or Pss (now) summed over the server and its worker processes."""
        return memory_mb(self.process.pid, field_name)

    def peaks(self) -> str:
        """Each process's peak RSS, named by its role: `main 69 + worker 79 + resource tracker 12 MB`."""
        parts = []
        for pid in process_tree(self.process.pid):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_text()
            except OSError:
                continue
            role = "main" if pid == self.process.pid else "worker"
            role = "resource tracker" if "resource_tracker" in command else role
            parts.append(f"{role} {memory_mb(pid, 'VmHWM', tree=False):.0f}")
        return " + ".join(parts) + " MB"

    def asgi_server(self) -> str:
        """Which ASGI server the process runs: granian maps its native module, uvicorn is pure Python."""
        for pid in process_tree(self.process.pid):
            try:
                if "granian" in Path(f"/proc/{pid}/maps").read_text():
                    return "granian"
            except OSError:
                continue
        return "uvicorn"


def _drain(server: Server) -> None:
    assert server.process.stdout is not None
    for line in server.process.stdout:
        server.lines.append(line)


def _wait_until_answering(server: Server, path: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited ({server.process.returncode}):\n{''.join(server.lines)}")
        try:
            with urllib.request.urlopen(server.base + path, timeout=5) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the server did not answer {path} within {START_SECONDS:.0f} s")


@contextmanager
def running(command: list[str], env: dict[str, str], cwd: Path, ready_path: str) -> Iterator[Server]:
    """Start `command` (which must serve on the port in it), wait for `ready_path`, stop it after."""
    port = int(command[command.index("--port") + 1])
    process = subprocess.Popen(  # noqa: S603 - our own command
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: stopping it stops its workers too
    )
    server = Server(process, port)
    threading.Thread(target=_drain, args=(server,), daemon=True).start()
    try:
        _wait_until_answering(server, ready_path)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def serve(
    database_url: str, workdir: Path, workers: int = 1, asgi_server: str = "serve", **env: str
) -> AbstractContextManager[Server]:
    """The service on a free port over `database_url`: `workflow-service serve` itself, or (to compare
    ASGI servers) its app factory run directly under `asgi_server` (`granian` or `uvicorn`)."""
    port = free_port()
    if asgi_server == "serve":
        command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers)]
    else:
        command = asgi_command(asgi_server, "api.cli.worker:worker_app", port, workers)
    return running(command, service_env(database_url, workdir, **env), workdir, "/ready")


def asgi_command(asgi_server: str, factory: str, port: int, workers: int) -> list[str]:
    """`factory` (module:function) served by granian or uvicorn on `port`."""
    where = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    if asgi_server == "granian":
        return [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", *where, factory]
    if asgi_server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "--factory", *where, "--no-access-log", factory]
    raise ValueError(f"an ASGI server is granian or uvicorn, not {asgi_server!r}")


def serve_baseline(asgi_server: str, page_file: Path, workers: int = 1) -> AbstractContextManager[Server]:
    """The constant-list app, answering the page stored in `page_file` at /list."""
    env = {**os.environ, "BENCH_PAGE_FILE": str(page_file)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_ROOT), env.get("PYTHONPATH")]))
    command = asgi_command(asgi_server, f"{PACKAGE}.baseline_app:create_app", free_port(), workers)
    return running(command, env, IMPORT_ROOT, "/list")


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def memory_mb(pid: int, field_name: str, tree: bool = True) -> float:
    """The sum of one memory field over the process tree, in MB: VmRSS or VmHWM (peak) from
    /proc/PID/status, or Pss from smaps_rollup (shared pages split between the processes sharing them)."""
    source = "smaps_rollup" if field_name == "Pss" else "status"
    total_kb = 0
    for member in process_tree(pid) if tree else [pid]:
        try:
            lines = Path(f"/proc/{member}/{source}").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith(f"{field_name}:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024

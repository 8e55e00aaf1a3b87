"""`workflow-service rebuild` and `verify` as real processes, with their rates in events per second."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from .figures import Figure
from .server import service_env

SUMMARY = re.compile(r"([\d,]+) events(?: replayed)? in ([\d.]+) s \(([\d,]+) events/s\)")


def run_cli(database_url: str, workdir: Path, *args: str) -> tuple[float, str]:
    """Run `workflow-service ARGS`; its wall seconds and what it printed on stderr."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "api.cli", *args],
        env=service_env(database_url, workdir),
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"workflow-service {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return seconds, done.stderr


def operation(database_url: str, workdir: Path, command: str) -> Figure:
    """The command's own rate from its summary line; the wall time, process start included, beside it."""
    wall, printed = run_cli(database_url, workdir, command)
    found = SUMMARY.findall(printed)
    if found:
        counted, seconds, rate = found[-1]
        events, own_rate = int(counted.replace(",", "")), float(rate.replace(",", ""))
    else:  # no summary line: count nothing, say so
        events, seconds, own_rate = 0, f"{wall:.1f}", 0.0
    return Figure(
        command,
        f"`{command}`",
        rate=own_rate,
        unit="events/s",
        count=events,
        note=f"{events:,} events in {seconds} s; {events / wall:,.0f}/s by wall clock with process start",
        extra={"wall_seconds": wall},
    )

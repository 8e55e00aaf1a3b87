"""How an export or import reports itself: progress on stderr as it goes, and a one-line summary."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import IO, Literal

PROGRESS_EVERY = 10_000


@dataclass
class Progress:
    """Counts work done and says so on stderr every PROGRESS_EVERY items, and once at the end."""

    what: str
    total: int | None = None
    stream: IO[str] = field(default_factory=lambda: sys.stderr)
    every: int = PROGRESS_EVERY
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    _next: int = 0

    def __post_init__(self) -> None:
        self._next = self.every

    def advance(self, count: int) -> None:
        self.done += count
        if self.done >= self._next:
            self._next = (self.done // self.every + 1) * self.every
            of = f" of {self.total:,}" if self.total is not None else ""
            print(f"{self.what}: {self.done:,}{of} ({self.rate():,.0f}/s)", file=self.stream, flush=True)

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        return self.done / max(self.seconds(), 1e-9)


SummaryKind = Literal["export", "import"]


def summary(kind: SummaryKind, counts: dict[str, int], seconds: float) -> str:
    """One line: what moved, how long it took, and the event rate."""
    events = counts.get("events", 0)
    others = ", ".join(f"{count:,} {table}" for table, count in counts.items() if table != "events")
    rate = events / max(seconds, 1e-9)
    verb = "exported" if kind == "export" else "imported"
    return f"{verb} {events:,} events ({others}) in {seconds:.1f} s: {rate:,.0f} events/s"

"""One measured figure, and the plan of sizes a run follows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .client import Load


@dataclass
class Figure:
    """A rate (requests or events per second) and/or latencies, under a stable key such as `create@16`."""

    key: str
    what: str
    rate: float | None = None
    p50: float | None = None
    p99: float | None = None
    unit: str = "req/s"
    note: str = ""
    count: int = 0
    errors: int = 0
    tail: str = "p99"
    """What the p99 field holds: the 99th percentile, or the maximum of a few sequential samples."""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, key: str, what: str, load: Load, note: str = "") -> Figure:
        if load.errors:
            note = f"{note}; {load.errors} errors, first: {load.first_error}".strip("; ")
        extra = {"client_cpu": load.client_cpu, "connections": load.connections}
        return cls(key, what, load.rate, load.p50, load.p99, note=note, count=load.count, errors=load.errors,
                   extra=extra)  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """How big a run is: the store's size and how long each point is measured."""

    name: str
    workflows: int
    long_versions: int
    short_versions: int = 10
    runs: int = 100
    warmup: float = 1.0
    duration: float = 5.0
    lag_samples: int = 100
    history_samples: int = 40
    deep_walk_seconds: float = 900.0
    """How long the suite may page through `list` to reach a deep page (it stops there if not at the end)."""
    write_concurrency: tuple[int, ...] = (1, 16, 64)
    read_concurrency: tuple[int, ...] = (1, 32)


PLANS = {
    "smoke": Plan(
        "smoke",
        workflows=300,
        long_versions=200,
        runs=10,
        warmup=0.1,
        duration=0.4,
        lag_samples=10,
        history_samples=10,
    ),
    "medium": Plan("medium", workflows=100_000, long_versions=10_000, warmup=1.0, duration=4.0),
    "full": Plan("full", workflows=1_000_000, long_versions=10_000),
}

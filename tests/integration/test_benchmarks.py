"""The benchmark suite's smallest size, end to end on each store: it runs and produces every figure.

Shortened further than `--size smoke` (each point measured 0.1 s, a smaller store, a long workflow
just past one page of versions): what is checked here is that the suite works, not what it measures.

No timing is asserted (figures belong in BENCHMARKS.md); what is checked is that every figure the
issue asks for is measured, each beside its baseline, without a failed request, and written into
the Markdown results section the suite keeps in BENCHMARKS.md, leaving the rest of the file alone.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.stores import postgres_admin_url

ROOT = Path(__file__).resolve().parents[2]
READS = ("list", "list_deep", "get", "versions", "analytics", "history", "events")
LOADS = [
    *(f"{write}@{c}" for write in ("create", "update") for c in (1, 16, 64)),
    *(f"{read}@{c}" for read in READS for c in (1, 32)),
    *(f"baseline.commit@{c}" for c in (1, 16, 64)),
    "baseline.list@1",
    "baseline.list@32",
]
"""Figures measured under load: a rate, latencies, and every answer a success."""
TIMES = ["update_long", "update_short", "versions_long", "versions_short", "lag"]
RATES = ["rebuild", "verify", "baseline.read", "memory", "seed"]
SHORTER = ["--duration", "0.1", "--workflows", "120", "--long-versions", "110"]
"""Smaller than smoke, still enough that the long workflow's versions take two pages."""
HAND_WRITTEN = "# Benchmarks\n\nMethod: hand-written text the suite must keep.\n"


def run_suite(store: str, tmp_path: Path) -> tuple[dict[str, Any], str]:
    results, markdown = tmp_path / "figures.json", tmp_path / "BENCHMARKS.md"
    markdown.write_text(HAND_WRITTEN)
    command = [sys.executable, "-m", "scripts.bench", "--size", "smoke", "--stores", store, *SHORTER]
    command += ["--json", str(results), "--write", str(markdown), "--label", "ci-smoke"]
    if store == "postgres":
        command += ["--postgres", str(postgres_admin_url())]
    done = subprocess.run(  # noqa: S603 - our own command
        command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(results.read_text())[store], markdown.read_text()


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def problems(figures: dict[str, Any]) -> list[str]:
    """What is missing or unmeasured, by figure key."""
    found = [f"{key}: missing" for key in LOADS + TIMES + RATES if key not in figures]
    for key in (key for key in LOADS if key in figures):
        figure = figures[key]
        if figure["errors"]:
            found.append(f"{key}: {figure['errors']} failed requests ({figure['note']})")
        if not (figure["count"] > 0 and finite(figure["rate"]) and finite(figure["p50"])):
            found.append(f"{key}: not measured ({figure})")
    for key in (key for key in TIMES if key in figures):
        if not (finite(figures[key]["p50"]) and finite(figures[key]["p99"])):
            found.append(f"{key}: no time ({figures[key]})")
    for key in (key for key in RATES if key in figures):
        if not (finite(figures[key]["rate"]) and figures[key]["rate"] > 0):
            found.append(f"{key}: no rate ({figures[key]})")
    found += [f"{key}: no events" for key in ("rebuild", "verify") if figures.get(key, {}).get("count") == 0]
    return found


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_smoke_size_measures_every_figure_beside_its_baseline(store: str, tmp_path: Path) -> None:
    run, markdown = run_suite(store, tmp_path)

    assert problems(run["figures"]) == []
    assert run["figures"]["versions_long"]["extra"]["paged"] is True
    assert run["facts"]["asgi_server"] in ("uvicorn", "granian")
    assert markdown.startswith(HAND_WRITTEN)
    section = markdown.split("<!-- results:ci-smoke -->\n", 1)[1]
    assert section.endswith("<!-- /results:ci-smoke -->\n")
    assert f"#### {store}" in section
    assert "| create, 16 conn. | " in section
    assert "| list, first page (50), 32 conn. | " in section
    assert "| `rebuild` ≥ 30,000 events/s | " in section

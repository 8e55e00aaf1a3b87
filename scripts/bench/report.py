"""Markdown for a run: each figure beside its same-run baseline with the ratio, and the issue's targets."""

from __future__ import annotations

import math
import re
from pathlib import Path

from .figures import Figure
from .suite import StoreRun
from .targets import READS, targets_table
from .targets import times as ratio_text


def cell(figure: Figure | None) -> str:
    if figure is None:
        return "—"
    parts = []
    if figure.rate is not None:
        parts.append(f"{figure.rate:,.0f} {figure.unit}")
    if figure.p50 is not None:
        parts.append(f"p50 {figure.p50:.1f} ms · {figure.tail} {figure.p99:.1f} ms")
    return " · ".join(parts) or "—"


def ratio(figure: Figure | None, baseline: Figure | None, *, times: bool = False) -> str:
    """service ÷ baseline: of rates (higher is better), or of p50 times when `times` (lower is better)."""
    if figure is None or baseline is None:
        return "—"
    mine, theirs = (figure.p50, baseline.p50) if times else (figure.rate, baseline.rate)
    if not mine or not theirs or math.isnan(mine) or math.isnan(theirs):
        return "—"
    return ratio_text(mine / theirs).rstrip("x")


def pairs(run: StoreRun) -> list[tuple[str, str, bool]]:
    """(figure key, baseline key, compare times) in the order the table shows them."""
    rows: list[tuple[str, str, bool]] = []
    for operation in ("create", "update"):
        rows += [(f"{operation}@{c}", f"baseline.commit@{c}", False) for c in (1, 16, 64)]
    for name in READS:
        rows += [(f"{name}@{c}", f"baseline.list@{c}", False) for c in (1, 32)]
    rows += [("update_long", "update_short", True), ("versions_long", "versions_short", True)]
    rows += [("lag", "", False), ("rebuild", "baseline.read", False), ("verify", "baseline.read", False)]
    rows += [("memory", "", False), ("seed", "", False)]
    return [row for row in rows if row[0] in run.figures]


def store_table(run: StoreRun) -> str:
    lines = [
        "| figure | this service | baseline, same run | ratio |",
        "|---|---|---|---|",
    ]
    for key, base_key, times in pairs(run):
        figure, baseline = run.figures[key], run.figures.get(base_key)
        what = figure.what + (f" ({figure.note})" if figure.note and figure.unit != "req/s" else "")
        base = f"{baseline.what}: {cell(baseline)}" if baseline else "—"
        base += f" ({baseline.note})" if baseline and baseline.note else ""
        if key == "memory":
            peak = run.facts.get("baseline_peak_rss_mb")
            base = f"{peak:,.0f} MB: the minimal Litestar app" if peak else "—"
            shown = f"{figure.rate / peak:.2f}" if peak and figure.rate else "—"
        else:
            shown = ratio(figure, baseline, times=times)
        errors = f" **{figure.errors} errors**" if figure.errors else ""
        lines.append(f"| {what} | {cell(figure)}{errors} | {base} | {shown} |")
    return "\n".join(lines)


def markdown(runs: list[StoreRun], header: str) -> str:
    parts = [header]
    for run in runs:
        facts = run.facts
        client = max((f.extra.get("client_cpu", 0.0) for f in run.figures.values()), default=0.0)
        parts.append(
            f"#### {run.store}\n\n{facts['workflows']:,} workflows; {facts['workers']} worker(s), "
            f"{facts.get('asgi_server_note', '?')}; load average {fmt_load(facts['load_before'])} before, "
            f"{fmt_load(facts.get('load_after'))} after; the load generator used at most {client:.0%} of a"
            f" core; paging `list` to row {facts.get('listed_rows', 0):,} for the deep page took"
            f" {facts.get('deep_walk_seconds', 0):.0f} s.\n\n{store_table(run)}\n\n"
            f"Targets:\n\n{targets_table(run)}"
        )
    return "\n\n".join(parts) + "\n"


def fmt_load(load: tuple[float, float, float] | None) -> str:
    return "?" if load is None else " / ".join(f"{value:.2f}" for value in load)


def write_section(path: Path, label: str, text: str) -> None:
    """Put `text` between this label's markers in `path`, replacing what a previous run left there."""
    start, end = f"<!-- results:{label} -->", f"<!-- /results:{label} -->"
    block = f"{start}\n{text.strip()}\n{end}"
    current = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = current.rstrip("\n") + ("\n\n" if current else "") + block + "\n"
    path.write_text(updated)

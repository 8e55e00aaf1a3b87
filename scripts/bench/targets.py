"""The issue's targets, each checked against a run's figures: (target, measured, met or missed)."""

from __future__ import annotations

import math

from .suite import StoreRun

READS = ("list", "list_deep", "get", "versions", "analytics", "history", "events")
Row = tuple[str, str, str]


def rate(run: StoreRun, key: str) -> float:
    figure = run.figures.get(key)
    return figure.rate if figure is not None and figure.rate is not None else math.nan


def p50(run: StoreRun, key: str) -> float:
    figure = run.figures.get(key)
    return figure.p50 if figure is not None and figure.p50 is not None else math.nan


def div(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def times(ratio: float) -> str:
    """A ratio to three significant digits: 0.0041x rather than 0.00x, 0.497x rather than 0.50x."""
    return f"{ratio:.3g}x"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def against_baselines(run: StoreRun) -> list[Row]:
    rows = []
    for read in ("list", "get"):
        r = div(rate(run, f"{read}@32"), rate(run, "baseline.list@32"))
        rows.append((f"`{read}` ≥ 0.6x constant list, 32 conn.", times(r), verdict(r >= 0.6)))
    for write in ("create", "update"):
        r = div(rate(run, f"{write}@16"), rate(run, "baseline.commit@16"))
        rows.append((f"`{write}` ≥ 0.5x raw commit, 16 conn.", times(r), verdict(r >= 0.5)))
        ms = p50(run, f"{write}@1")
        rows.append((f"`{write}` p50 < 5 ms, 1 conn.", f"{ms:.1f} ms", verdict(ms < 5)))
    return rows


def lag(run: StoreRun) -> Row:
    figure = run.figures.get("lag")
    p99 = figure.p99 if figure is not None and figure.p99 is not None else math.nan
    return "projection lag p99 < 50 ms (lower bound)", f"{p99:.1f} ms", verdict(p99 < 50)


def deep_page(run: StoreRun) -> Row:
    """Keyset paging: the deep page and the first cost the same (either being slower misses)."""
    ratio = div(p50(run, "list_deep@1"), p50(run, "list@1"))
    same = 0.8 <= ratio <= 1.25
    slower = "" if same or math.isnan(ratio) else f" ({'deep' if ratio > 1 else 'first'} page slower)"
    where = f"row {run.facts.get('listed_rows', 0):,}"
    target = f"a list page costs the same at {where} as at row 1 (p50s within 1.25x)"
    return target, f"{times(ratio)}{slower}", verdict(same)


def rebuild_and_memory(run: StoreRun) -> list[Row]:
    rebuild, memory = rate(run, "rebuild"), rate(run, "memory")
    workflows = f"{run.facts.get('workflows', 0):,} workflows"
    return [
        ("`rebuild` ≥ 30,000 events/s", f"{rebuild:,.0f}/s", verdict(rebuild >= 30_000)),
        (f"server memory < 250 MB ({workflows})", f"{memory:,.0f} MB", verdict(memory < 250)),
    ]


def concurrency(run: StoreRun) -> Row:
    """Every read at 32 connections and every write at 16 answers at least as many as at 1."""
    pairs = [*((read, 32) for read in READS), ("create", 16), ("update", 16)]
    falling = [
        f"{name} {times(div(rate(run, f'{name}@{high}'), rate(run, f'{name}@1')))}"
        for name, high in pairs
        if rate(run, f"{name}@{high}") < rate(run, f"{name}@1")
    ]
    return (
        "throughput at 32 (writes: 16) conn. ≥ at 1",
        "; ".join(falling) or "none falls",
        verdict(not falling),
    )


def long_history(run: StoreRun) -> list[Row]:
    ratio = div(p50(run, "update_long"), p50(run, "update_short"))
    long, short = run.facts.get("long_versions", 0), run.facts.get("short_versions", 0)
    versions = run.figures.get("versions_long")
    paged = bool(versions.extra.get("paged")) if versions is not None else False
    return [
        (f"update as fast at {long:,} versions as at {short} (p50 within 1.25x)", times(ratio),
         verdict(ratio <= 1.25)),
        ("`versions` paged (spec §5)", "paged" if paged else "whole", verdict(paged)),
    ]  # fmt: skip


def targets(run: StoreRun) -> list[Row]:
    return [
        *against_baselines(run),
        lag(run),
        deep_page(run),
        *rebuild_and_memory(run),
        concurrency(run),
        *long_history(run),
    ]


def targets_table(run: StoreRun) -> str:
    lines = ["| target | measured | |", "|---|---|---|"]
    lines += [f"| {target} | {value} | {mark} |" for target, value, mark in targets(run)]
    return "\n".join(lines)

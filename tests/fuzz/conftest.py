"""Fixtures for the fuzzers: services without a rate limit, real ids to aim at, and a request count."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import Api
from tests.support.targets import Targets, seed

FUZZED_REQUESTS: Counter[str] = Counter()
"""Requests each fuzzer sent, keyed by `file[store]`; printed at the end of the run."""


@pytest.fixture(autouse=True)
def no_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fuzzer sends thousands of requests a minute with one key; the limit would answer them all 429."""
    monkeypatch.setenv("WFS_RATE_LIMIT", "0")


@pytest.fixture
def targets(api: Api, other_api: Api) -> Targets:
    return seed(api, other_api)


@pytest.fixture
def count_request(request: pytest.FixtureRequest) -> Any:
    """Call once per request sent; the totals are printed per fuzzer and store."""
    key = f"{Path(str(request.node.path)).name}[{request.node.callspec.params.get('database_url', '?')}]"

    def count(n: int = 1) -> None:
        FUZZED_REQUESTS[key] += n

    return count


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FUZZED_REQUESTS:
        sent = ", ".join(f"{key}: {n}" for key, n in sorted(FUZZED_REQUESTS.items()))
        terminalreporter.write_line(f"fuzzed requests: {sent}")

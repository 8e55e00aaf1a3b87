"""The README's curl walk-through runs top to bottom, as written, against a real server."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import Server

README = Path(__file__).resolve().parents[2] / "README.md"
WALK_THROUGH = re.compile(r"```sh\n(# walk-through\n.*?)```", re.DOTALL)


def walk_through() -> str:
    found = WALK_THROUGH.search(README.read_text())
    assert found, "README.md has no ```sh block starting with '# walk-through'"
    return found.group(1)


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
def test_the_readme_walk_through_runs_as_written(one_process_server: Server) -> None:
    server = one_process_server
    assert server.key is not None
    result = subprocess.run(  # noqa: S603 - our own README, run by bash
        ["bash", "-euo", "pipefail", "-c", walk_through()],  # noqa: S607
        env={"PATH": "/usr/bin:/bin", "KEY": server.key, "API": f"{server.base_url}/api/v1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"status":404' in result.stdout.replace(" ", ""), result.stdout
    assert '"permanentlyDeleted":true' in result.stdout.replace(" ", ""), result.stdout

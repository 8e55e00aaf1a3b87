"""`workflow-service` commands run inside the test process: the same code as the installed command,
without a second of imports per call. Tests of the entry point itself use `servers.run_cli`."""

from __future__ import annotations

import io
import os
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock

from api.cli import main


def cli_in_process(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`workflow-service ARGS` on the store under test, answered as `run_cli` answers it."""
    written = io.BytesIO()
    out = io.TextIOWrapper(written, encoding="utf-8", write_through=True)  # `export` writes bytes to it
    err = io.StringIO()
    with (
        mock.patch.dict(os.environ, {"DATABASE_URL": database_url, **env}),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse refusing the arguments
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(
        ["workflow-service", *args], code, written.getvalue().decode(), err.getvalue()
    )

"""Running `scrm` as a user would: the settings in its environment, its exit code, stdout and
stderr.

By default the command runs in this process through typer's runner: the same command code,
arguments, environment, exit codes and output, without paying a second interpreter's start-up
and imports (~2 s a call on the CI machine) for each of the suite's hundreds of calls.
`SCRM_TEST_CLI=subprocess` runs every call as a child process instead (`python -m api.cli`),
and tests/integration/test_cli.py always starts real ones for the entry point itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from dataclasses import dataclass

from infra.settings import Settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def env_for(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRM_")}
    values = {
        "SCRM_DATABASE_URL": settings.database_url,
        "SCRM_NATS_URL": settings.nats_url,
        "SCRM_NATS_STREAM": settings.nats_stream,
        "SCRM_NATS_SUBJECT_PREFIX": settings.nats_subject_prefix,
        "SCRM_MASTER_KEY": settings.master_key,
        "SCRM_DATA_DIR": str(settings.data_dir),
    }
    env.update({k: str(v) for k, v in values.items() if v is not None})
    return env


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def scrm(
    settings: Settings, *args: str, timeout: float = 60, child: bool = False
) -> subprocess.CompletedProcess[str] | Ran:
    """`scrm ARGS` with these settings (and no other SCRM_* of the caller's)."""
    if child or os.environ.get("SCRM_TEST_CLI") == "subprocess":
        return subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            cwd=ROOT,
            env=env_for(settings),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    from typer.testing import CliRunner

    from api.cli import app

    wanted = env_for(settings)
    env: dict[str, str | None] = {k: v for k, v in wanted.items() if k.startswith("SCRM_")}
    env.update({k: None for k in os.environ if k.startswith("SCRM_") and k not in wanted})
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=True)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What the interpreter prints for an uncaught exception, as a child process would.
        stderr += "".join(traceback.format_exception(result.exception))
    return Ran(result.exit_code, result.stdout, stderr)


def head(settings: Settings) -> int:
    """The store's head position, read by a container of its own (as a CLI run leaves it)."""
    from infra.bootstrap import bootstrap

    c = bootstrap(settings)
    try:
        return c.head()
    finally:
        c.close()

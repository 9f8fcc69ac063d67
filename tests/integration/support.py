"""Running `scrm` as a user would: a child process with the settings in its environment."""

from __future__ import annotations

import os
import subprocess
import sys

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


def scrm(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT,
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

"""Run the `ivr` command as a user would: a subprocess with only the given IVR_* settings."""

from __future__ import annotations

import os
import subprocess
import sys


def run_ivr(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

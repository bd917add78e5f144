"""Running the command-line tools the tests make audio with (espeak-ng, ffmpeg)."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def tool(name: str) -> str:
    """The path of ``name``; the test fails (never skips) when it is not installed."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (apt-get install {name})", pytrace=False)
    return found


def run_tool(*argv: str) -> None:
    """Run a command; the test fails with its error output when it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed: {proc.stderr.strip()}", pytrace=False)

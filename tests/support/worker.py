"""An `ivr` worker (`ivr telephony` or `ivr worker`) in its own process, as an operator runs
it (to kill it for real)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


class Worker:
    """`ivr <command>` in its own process (session), started once its log says it runs.

    ``command``: ``telephony`` (the default) or ``worker`` (the job consumer). The log is
    appended to, so a restarted worker keeps the earlier lines; it is ready when the log has
    one more "is running" line than before.
    """

    def __init__(
        self, env: dict[str, str], log: Path, command: str = "telephony", timeout: float = 60
    ) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        full.update(env)
        self.log = log
        self.command = command
        before = log.read_text(errors="replace").count("is running") if log.exists() else 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", "-v", command],
            env=full,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while log.read_text(errors="replace").count("is running") <= before:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"`ivr {command}` did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(20)
        return self.proc.returncode

"""`ivr telephony` in its own process, as an operator runs it (to kill it for real)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


class Worker:
    """`ivr telephony` as an operator runs it, in its own process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        full.update(env)
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", "-v", "telephony"],
            env=full,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while "is running" not in log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"`ivr telephony` did not start:\n{log.read_text()[-3000:]}")
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

"""`ivr web` (gunicorn, as users run it) for a test instance, and its staff made with the
real CLI (`ivr org add`, `ivr user add --json`)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import run_ivr
from tests.support.instance import instance_env
from tests.support.ports import free_port


@dataclass(frozen=True)
class Staff:
    """A user made with `ivr user add --json` in an organisation made with `ivr org add`."""

    email: str
    password: str
    role: str
    org_id: str
    org_name: str

    @property
    def org(self) -> dict[str, str]:
        """The organisation as `ivr org add --json` printed it (for ``add_user``)."""
        return {"id": self.org_id, "name": self.org_name}


class WebServer:
    """`ivr web` in its own process group on a free loopback port (IVR_WEB_PORT), ready when
    a worker answers on the port (gunicorn listens before its workers have booted, and
    stops when one cannot boot); ``stop`` leaves no process behind."""

    def __init__(self, env: dict[str, str], log: Path, timeout: float = 60) -> None:
        self.log = log
        for _ in range(3):  # another process may take the free port before gunicorn binds it
            if self._start(env, timeout):
                return
        pytest.fail(f"`ivr web` found no free port:\n{self.log_tail()}", pytrace=False)

    def _start(self, env: dict[str, str], timeout: float) -> bool:
        """Start on a free port; False when the port was taken meanwhile."""
        self.port = free_port(also_udp=False)
        self.url = f"http://127.0.0.1:{self.port}"
        full = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        full.update(env)
        full["IVR_WEB_PORT"] = str(self.port)
        logged = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ivr.cli", "web"],
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # gunicorn's workers share its process group
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None:
                self.stop()
                if "Address already in use" in self.log_tail(chars=0, since=logged):
                    return False
                pytest.fail(
                    f"`ivr web` exited ({self.proc.returncode}) before it answered:\n"
                    + self.log_tail(),
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"`ivr web` did not answer on {self.url} within {timeout:g} s:\n"
                    + self.log_tail(),
                    pytrace=False,
                )
            time.sleep(0.05)  # the next look at the port (the deadline above bounds it)
        return True

    def _answers(self) -> bool:
        """Whether the port is open and a worker answers GET /login (any HTTP status)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                return False
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", "/login")
            connection.getresponse().read()
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def log_tail(self, chars: int = 4000, since: int = 0) -> str:
        """The log's last ``chars`` characters (0: all) from byte ``since`` on."""
        if not self.log.exists():
            return ""
        text = self.log.read_bytes()[since:].decode(errors="replace")
        return text[-chars:] if chars else text

    def stop(self) -> None:
        """SIGTERM to gunicorn's process group (a graceful stop), SIGKILL if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        # The workers too: whatever is left in the group (the master's exit does not wait
        # for a stuck worker).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


@dataclass
class WebInstance:
    """An initialised data directory (its own ports) with `ivr web` serving it."""

    env: dict[str, str]
    data_dir: Path
    server: WebServer

    @property
    def url(self) -> str:
        return self.server.url

    def ivr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_ivr(self.env, *args, timeout=timeout)

    def add_org(self, name: str, *, language: str = "fi") -> dict[str, str]:
        made = self.ivr("org", "add", name, "--language", language, "--json")
        assert made.returncode == 0, f"ivr org add {name}: {made.stderr}"
        org: dict[str, str] = json.loads(made.stdout)
        return org

    def add_user(self, email: str, org: dict[str, str], role: str) -> Staff:
        made = self.ivr("user", "add", email, "--org", org["name"], "--role", role, "--json")
        assert made.returncode == 0, f"ivr user add {email}: {made.stderr}"
        out = json.loads(made.stdout)
        return Staff(email, out["password"], role, org["id"], org["name"])


def init_data_dir(prefix: str = "ivr-browser-") -> tuple[dict[str, str], Path]:
    """A data directory on free ports, initialised with `ivr init` (nothing started)."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    env = instance_env(data_dir)
    done = run_ivr(env, "init")
    if done.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        pytest.fail(f"`ivr init` failed:\n{done.stderr}", pytrace=False)
    return env, data_dir


@contextlib.contextmanager
def serving(
    env: dict[str, str], data_dir: Path, log_name: str = "web.log"
) -> Iterator[WebInstance]:
    """`ivr web` for an initialised data directory, stopped afterwards."""
    server = WebServer(env, data_dir / log_name)
    try:
        yield WebInstance(env, data_dir, server)
    finally:
        server.stop()


@contextlib.contextmanager
def web_instance(prefix: str = "ivr-browser-") -> Iterator[WebInstance]:
    """A fresh data directory with `ivr web` serving it; both gone afterwards."""
    env, data_dir = init_data_dir(prefix)
    try:
        with serving(env, data_dir) as site:
            yield site
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

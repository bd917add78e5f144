"""The demo's child processes (``ivr telephony``, ``ivr worker``, ``ivr web``), its ports,
and finding every process that belongs to a data directory."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ivr.pbx.process import port_in_use

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """The child gets SIGTERM if the demo dies without stopping it (e.g. SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """``ivr <command>`` in a session of its own (so Ctrl-C reaches only the demo, which
    stops the children in order), its output in ``log``."""

    def __init__(self, name: str, args: list[str], log: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.log = log
        self.argv = [sys.executable, "-m", "ivr.cli", *args]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def says(self, text: str) -> bool:
        try:
            return text in self.log.read_text(errors="replace")
        except OSError:
            return False

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        """Signal the child's whole process group (gunicorn's workers, too)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


def stop_children(
    children: list[Child], grace: float, hurry: Callable[[], bool], say: Callable[[str], None]
) -> None:
    """SIGTERM each child's process group, wait up to ``grace`` seconds (less once
    ``hurry()``), then SIGKILL what is left. Returns when every group is gone."""
    for child in children:
        if child.alive():
            child.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not hurry():
        if not any(_group_alive(c) for c in children):
            break
        time.sleep(0.1)
    why = "at once (a second signal)" if hurry() else f"after {grace:g} s"
    for child in children:
        if _group_alive(child):
            say(f"{child.name} killed {why}")
            child.signal(signal.SIGKILL)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(10)
        end = time.monotonic() + 10
        while _group_alive(child) and time.monotonic() < end:
            time.sleep(0.05)


def _group_alive(child: Child) -> bool:
    child.proc.poll()  # reap the leader
    try:
        os.killpg(child.proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # Zombies of the group (not ours to reap) count as gone.
    return any(_state(pid) not in ("Z", "") for pid in _pids() if _pgid(pid) == child.proc.pid)


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return -1


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return ""


def processes_of(data_dir: Path) -> list[tuple[int, str]]:
    """Every live process (pid, command line) that names ``data_dir`` in its command line
    or has it as IVR_DATA_DIR: Asterisk, the workers, the web server and its workers."""
    needle = str(data_dir).encode()
    env_needle = b"IVR_DATA_DIR=" + needle
    found: list[tuple[int, str]] = []
    mine = _ancestors(os.getpid())  # this process and what started it (a shell, `timeout`)
    for pid in _pids():
        if pid in mine or _state(pid) in ("Z", ""):
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            environ = []
        if needle in cmdline or env_needle in environ:
            found.append((pid, cmdline.replace(b"\0", b" ").decode(errors="replace").strip()))
    return found


def _ancestors(pid: int) -> set[int]:
    found = set()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[-1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return found


# ------------------------------------------------------------------ ports
def free_port(host: str, udp_too: bool = False) -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if not udp_too or not port_in_use(host, port, socket.SOCK_DGRAM):
            return port
    raise RuntimeError(f"no free port on {host}")


def port_or_free(host: str, port: int, kind: int) -> int:
    """``port`` if it is free on ``host``, else a free one."""
    if not port_in_use(host, port, kind):
        return port
    return free_port(host, udp_too=kind == socket.SOCK_DGRAM)


def rtp_range_or_free(host: str, start: int, end: int) -> tuple[int, int]:
    """``start``-``end`` if its UDP ports look free (every 50th is tried), else another
    free range of the same size."""
    size = end - start + 1

    def free(base: int) -> bool:
        return not any(
            port_in_use(host, port, socket.SOCK_DGRAM) for port in range(base, base + size, 50)
        )

    if free(start):
        return start, end
    for base in range(20000, 60000 - size, size):
        if free(base):
            return base, base + size - 1
    raise RuntimeError(f"no free range of {size} UDP ports on {host}")


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status ``url`` answers with (redirects not followed), or None when nothing
    answers there."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()

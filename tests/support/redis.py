"""A throw-away redis-server from Debian's package, for the tests of the Redis job queue.

``start_redis(folder)`` runs ``/usr/bin/redis-server`` on 127.0.0.1 and a free port, with
nothing saved to disk and a password generated for this server (``--requirepass``; the
password is in ``url``), and waits until it answers PING. Anything that goes wrong raises
``RedisUnavailable`` with the reason and the server's log; ``running_redis`` turns that
into a test failure, never a skip.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_port

REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT = 10.0


class RedisUnavailable(RuntimeError):
    """The test redis-server could not be started; the message says why (with its log)."""


@dataclass
class RedisServer:
    folder: Path
    port: int
    password: str
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.folder / "redis.log"

    def command(self, *words: str) -> str:
        """Send one command (RESP, authenticated) and return the raw first reply line."""
        return _command(self.port, self.password, *words)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _encode(*words: str) -> bytes:
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _command(port: int, password: str, *words: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(_encode("AUTH", password) + _encode(*words))
        reply = b""
        while reply.count(b"\r\n") < 2:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    lines = reply.decode(errors="replace").split("\r\n")
    if lines[0] != "+OK":
        raise RedisUnavailable(f"AUTH was refused: {lines[0]}")
    return lines[1]


def start_redis(folder: Path) -> RedisServer:
    """A running redis-server on a free loopback port, its files in ``folder``."""
    binary = shutil.which("redis-server") if not Path(REDIS_SERVER).is_file() else REDIS_SERVER
    if binary is None:
        raise RedisUnavailable(
            f"{REDIS_SERVER} is not installed (apt-get install redis-server; "
            "scripts/setup.sh installs it)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    port = free_port(also_udp=False)
    log = folder / "redis.log"
    argv = [
        binary,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(folder),
        "--requirepass", password,
        "--daemonize", "no",
        "--logfile", str(log),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = RedisServer(folder, port, password, proc)
    deadline = time.monotonic() + START_TIMEOUT
    problem = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            problem = f"redis-server exited with status {proc.returncode}"
            break
        try:
            if server.command("PING") == "+PONG":
                return server
        except (OSError, RedisUnavailable) as exc:
            problem = str(exc)
        time.sleep(0.05)
    else:
        problem = f"no answer to PING within {START_TIMEOUT:.0f} s ({problem})"
    server.stop()
    text = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise RedisUnavailable(f"{problem}; {' '.join(argv[:5])} ...; log:\n{text}")


@contextmanager
def running_redis(folder: Path) -> Iterator[RedisServer]:
    """``start_redis`` for a test: a server that cannot start fails the test; always killed."""
    try:
        server = start_redis(folder)
    except RedisUnavailable as exc:
        pytest.fail(f"redis-server could not be started: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()

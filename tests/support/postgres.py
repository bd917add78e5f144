"""A throw-away PostgreSQL server from Debian's packages, for integration tests.

``start_postgres()`` runs ``initdb`` into a fresh temporary folder and starts the server
with ``pg_ctl`` on 127.0.0.1 (a free port) and a unix socket in that folder, fsync off.
PostgreSQL refuses to run as root, so when the tests run as root the server programs run
as the ``postgres`` system user (``runuser``) and the folder is given to that user.
Host connections need a password (SCRAM, a random one per server), as in production.

Anything that goes wrong raises ``PostgresUnavailable`` with the reason and the server's
log; the pytest fixture turns that into a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tests.support.ports import free_port

PG_ROOT = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
START_TIMEOUT = 20.0


class PostgresUnavailable(RuntimeError):
    """The test PostgreSQL could not be set up; the message says why (with its log)."""


def find_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding initdb (or $IVR_TEST_PG_BIN)."""
    if os.environ.get("IVR_TEST_PG_BIN"):
        candidates = [Path(os.environ["IVR_TEST_PG_BIN"])]
    else:
        versions = [p for p in PG_ROOT.glob("*/bin") if p.parent.name.isdigit()]
        candidates = sorted(versions, key=lambda p: int(p.parent.name), reverse=True)
    for bin_dir in candidates:
        if (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file():
            return bin_dir
    raise PostgresUnavailable(
        f"PostgreSQL server programs not found under {PG_ROOT}/<version>/bin "
        "(install Debian's postgresql package: apt-get install postgresql)"
    )


@dataclass
class PostgresServer:
    root: Path  # the temporary folder: data/, socket/, server.log, owned by the server user
    bin_dir: Path
    port: int
    password: str
    prefix: list[str] = field(default_factory=list)  # runuser ... when started as root
    started_in: float = 0.0  # seconds from initdb to the first successful connection

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3, TCP on loopback) for the superuser."""
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def log(self, last: int = 60) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"(no server log: {exc})"
        return "\n".join(lines[-last:])

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, *argv],
            cwd=self.root,  # the server user may not be able to read the current folder
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``) and remove its folder."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                done = self.run(
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "10",
                    "stop",
                )
                if done.returncode != 0:
                    self._kill_postmaster()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _server_user_prefix() -> tuple[list[str], int, int]:
    """How to run the server programs: as ourselves, or (as root) as the postgres user."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"the tests run as root and PostgreSQL refuses root, but there is no "
            f"{SYSTEM_USER!r} system user to run it as (Debian's postgresql package creates it)"
        ) from None
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", SYSTEM_USER, "--"], entry.pw_uid, entry.pw_gid
    setpriv = shutil.which("setpriv")
    if setpriv:
        return (
            [setpriv, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"],
            entry.pw_uid,
            entry.pw_gid,
        )
    raise PostgresUnavailable("running as root, and neither runuser nor setpriv is installed")


def _wait_ready(server: PostgresServer, deadline: float) -> None:
    """Connect until the server answers a query (``pg_ctl -w`` only sees the pid file)."""
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=server.port,
                user=SUPERUSER,
                password=server.password,
                dbname="postgres",
                connect_timeout=2,
            ) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.05)
    raise PostgresUnavailable(
        f"PostgreSQL on 127.0.0.1:{server.port} did not accept connections within "
        f"{START_TIMEOUT:.0f} s: {last}\n--- server log ---\n{server.log()}"
    )


def start_postgres(timeout: float = START_TIMEOUT, attempts: int = 3) -> PostgresServer:
    """A running, empty server; call ``stop()`` on it when done."""
    bin_dir = find_bin_dir()
    prefix, uid, gid = _server_user_prefix()
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
    password = secrets.token_urlsafe(18)
    server = PostgresServer(root, bin_dir, port=0, password=password, prefix=prefix)
    try:
        server.socket_dir.mkdir()
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        for path in (root, server.socket_dir, pwfile):
            os.chown(path, uid, gid)
        done = server.run(
            str(bin_dir / "initdb"),
            "-D",
            str(server.data_dir),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"initdb failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        for attempt in range(attempts):
            server.port = free_port(also_udp=False)
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-c port={server.port}",
                    f"-c unix_socket_directories={server.socket_dir}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=100",
                ]
            )
            budget = max(1, int(started + timeout - time.monotonic()))
            done = server.run(
                str(bin_dir / "pg_ctl"),
                "-D",
                str(server.data_dir),
                "-l",
                str(server.log_file),
                "-o",
                options,
                "-w",
                "-t",
                str(budget),
                "start",
                timeout=budget + 10,
            )
            if done.returncode == 0:
                break
            in_use = re.search(r"could not bind|Address already in use", server.log())
            if not in_use or attempt == attempts - 1:
                raise PostgresUnavailable(
                    f"pg_ctl start failed (exit {done.returncode}): {done.stdout}{done.stderr}"
                    f"\n--- server log ---\n{server.log()}"
                )
        _wait_ready(server, started + timeout)
        server.started_in = time.monotonic() - started
        return server
    except BaseException:
        server.stop()
        raise


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    return psycopg.connect(conninfo, autocommit=True)


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"{name!r} is not a plain database name")
    return name


def create_database(server_url: str, name: str) -> str:
    """Create an empty database next to ``server_url``'s; return its URL."""
    with _admin(server_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_check_name(name))))
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_database(server_url: str, name: str) -> None:
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(_check_name(name))
            )
        )

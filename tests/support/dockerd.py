"""A private Docker daemon for the Compose test: no bridge, no iptables, its own roots.

``PrivateDocker`` starts Debian's ``dockerd`` as root with its own data root (a cache
OUTSIDE the repository, so image layers persist between runs: ``$IVR_TEST_DOCKER_ROOT``
or ``~/.cache/ivr/dockerd``), its own exec root, socket and pid file in a temporary folder,
and an empty daemon config (the system's /etc/docker/daemon.json is never read)::

    with PrivateDocker() as docker:
        docker.ensure_debian_base("bookworm", "ivr-local/debian:bookworm-slim")
        docker.cli("images")

The daemon makes no network of its own (``--bridge=none``), touches no firewall
(``--iptables=false --ip6tables=false``) and no sysctl (``--ip-forward=false``,
``--ip-masq=false``): every container must use host networking. ``stop()`` (also run at
interpreter exit) stops the daemon and its containerd, kills whatever of theirs is left,
unmounts everything under both roots and says what it had to clean up.

The CLI is Debian's ``/usr/bin/docker`` (20.10, the daemon's own version); a newer CLI
elsewhere on PATH (``/usr/local/bin/docker``) is not used. Compose is Debian's
``docker-compose`` 1.29 (``$IVR_TEST_COMPOSE`` names another, e.g. ``docker compose``).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"
DEBIAN_MIRROR = "http://deb.debian.org/debian"


class DockerError(RuntimeError):
    """The private daemon did not start, a command failed, or something was left behind."""


def default_data_root() -> Path:
    env = os.environ.get("IVR_TEST_DOCKER_ROOT")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ivr" / "dockerd"


def mounts_under(*roots: Path) -> list[str]:
    """Mount points below any of ``roots`` (deepest first)."""
    prefixes = [str(r.resolve()) + "/" for r in roots] + [str(r.resolve()) for r in roots]
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].replace("\\040", " ")
            if any(point == p or point.startswith(p.rstrip("/") + "/") for p in prefixes):
                found.append(point)
    return sorted(set(found), key=len, reverse=True)


def processes_mentioning(*needles: str) -> dict[int, str]:
    """Processes whose command line mentions any of ``needles`` (pid -> command line)."""
    found: dict[int, str] = {}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        cmd = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        if cmd and any(n in cmd for n in needles):
            found[int(entry.name)] = cmd
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


class PrivateDocker:
    """One private ``dockerd`` (context manager); ``env`` talks to it."""

    def __init__(self, data_root: Path | None = None, start_timeout: float = 60.0) -> None:
        self.data_root = (data_root or default_data_root()).absolute()
        self.start_timeout = start_timeout
        self.tmp = Path(tempfile.mkdtemp(prefix="ivr-dockerd-"))
        self.exec_root = self.tmp / "exec"
        self.socket = self.tmp / "docker.sock"
        self.pidfile = self.tmp / "dockerd.pid"
        self.log_file = self.tmp / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.cleanup_notes: list[str] = []
        self._stopped = False
        self._lock: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> PrivateDocker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """The environment for docker/docker-compose commands aimed at this daemon."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_HOST"] = self.host
        env["DOCKER_BUILDKIT"] = "0"  # the classic builder: no buildx plugin here
        env["COMPOSE_DOCKER_CLI_BUILD"] = "0"
        env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin:" + env.get("PATH", "")
        return env

    def start(self) -> None:
        if os.geteuid() != 0:
            raise DockerError("the private Docker daemon needs root (dockerd)")
        if not Path(DOCKERD).exists():
            raise DockerError(f"{DOCKERD} is missing: apt-get install docker.io")
        self.data_root.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self.exec_root.mkdir(parents=True)
        config = self.tmp / "daemon.json"
        config.write_text("{}\n")
        argv = [
            DOCKERD,
            "--config-file",
            str(config),
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--storage-driver=overlay2",
            "--data-root",
            str(self.data_root),
            "--exec-root",
            str(self.exec_root),
            "-H",
            self.host,
            "--pidfile",
            str(self.pidfile),
        ]
        atexit.register(self.stop)
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DockerError(
                    f"dockerd exited at start (status {self.proc.returncode}):\n{self.log_tail()}"
                )
            probe = subprocess.run(
                [DOCKER, "version", "--format", "{{.Server.Version}}"],
                env=self.env,
                capture_output=True,
                text=True,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        self.stop()
        raise DockerError(
            f"dockerd did not answer within {self.start_timeout:.0f} s:\n{self.log_tail()}"
        )

    def _take_lock(self, timeout: float = 1800.0) -> None:
        """One daemon per data root at a time (two would corrupt it): wait for the other."""
        lock = self.data_root.with_name(self.data_root.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise DockerError(
                        f"another private dockerd has used {self.data_root} for "
                        f"{timeout:.0f} s (lock {lock}); set IVR_TEST_DOCKER_ROOT to another "
                        "folder to run beside it"
                    ) from None
                time.sleep(1.0)
        self._lock = fd

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no dockerd log)"
        return "\n".join(text.splitlines()[-lines:])

    def _ours(self) -> dict[int, str]:
        """dockerd, containerd and containerd-shim processes of this daemon."""
        return processes_mentioning(str(self.exec_root), str(self.socket), str(self.data_root))

    def stop(self) -> list[str]:
        """Stop the daemon and leave nothing behind; returns notes on what had to be forced."""
        if self._stopped:
            return self.cleanup_notes
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if self.proc is not None and self.proc.poll() is None:
            # Containers first, so that their processes end through the runtime.
            with contextlib.suppress(Exception):
                ids = self.cli("ps", "-aq", check=False, timeout=30).split()
                if ids:
                    self.cli("rm", "-f", *ids, check=False, timeout=60)
                    self.cleanup_notes.append(f"removed {len(ids)} container(s) left running")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.cleanup_notes.append("dockerd ignored SIGTERM for 30 s: killed")
                self.proc.kill()
                self.proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        left = self._ours()
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = {p: c for p, c in self._ours().items() if _alive(p)}
        for pid, cmd in left.items():
            self.cleanup_notes.append(f"killed a leftover process {pid}: {cmd[:120]}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for point in mounts_under(self.data_root, self.exec_root, self.tmp):
            # dockerd leaves its own network namespace's bind mount at exit: routine.
            if point != str((self.exec_root / "netns" / "default").resolve()):
                self.cleanup_notes.append(f"unmounted a leftover mount {point}")
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        if not mounts_under(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)  # releases the data root's lock
            self._lock = None
        return self.cleanup_notes

    # ------------------------------------------------------------------ commands
    def cli(
        self, *args: str, check: bool = True, timeout: float = 600, input: str | None = None
    ) -> str:
        """Run ``docker ARGS`` against this daemon; DockerError (with output) on failure."""
        proc = subprocess.run(
            [DOCKER, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and proc.returncode != 0:
            raise DockerError(
                f"docker {shlex.join(args)} failed (status {proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr)[-4000:]}"
            )
        return proc.stdout

    def image_exists(self, name: str) -> bool:
        proc = subprocess.run(
            [DOCKER, "image", "inspect", name], env=self.env, capture_output=True, text=True
        )
        return proc.returncode == 0

    def containers(self) -> list[dict[str, str]]:
        out = self.cli("ps", "-a", "--format", "{{json .}}")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def ensure_debian_base(self, suite: str, name: str, mirror: str = DEBIAN_MIRROR) -> bool:
        """A Debian ``suite`` image ``name`` from debootstrap (minbase) + ``docker import``.

        Skipped when the daemon already has ``name`` (its data root is a cache). Returns
        True when it was built now."""
        if self.image_exists(name):
            return False
        debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
        if not Path(debootstrap).exists():
            raise DockerError("debootstrap is missing: apt-get install debootstrap")
        tree = Path(tempfile.mkdtemp(prefix=f"ivr-base-{suite}-", dir=self.data_root.parent))
        try:
            env = {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "LC_ALL": "C",
                "DEBIAN_FRONTEND": "noninteractive",
            }
            proc = subprocess.run(
                [debootstrap, "--variant=minbase", suite, str(tree), mirror],
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            if proc.returncode != 0:
                raise DockerError(
                    f"debootstrap {suite} failed (status {proc.returncode}):\n"
                    + "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
                )
            # What the official slim images do: no documentation, a clean apt cache.
            subprocess.run(["chroot", str(tree), "apt-get", "clean"], check=False, env=env)
            for sub in ("var/lib/apt/lists", "var/cache/apt/archives"):
                for item in (tree / sub).glob("*"):
                    if item.is_file():
                        item.unlink()
            tar = subprocess.Popen(
                ["tar", "-C", str(tree), "--numeric-owner", "-c", "."],
                stdout=subprocess.PIPE,
            )
            imported = subprocess.run(
                [DOCKER, "import", "-c", 'CMD ["/bin/bash"]', "-", name],
                stdin=tar.stdout,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait()
            if imported.returncode != 0 or tar.returncode != 0:
                raise DockerError(f"docker import {name} failed:\n{imported.stderr[-2000:]}")
        finally:
            for point in mounts_under(tree):
                subprocess.run(["umount", "-l", point], check=False)
            if not mounts_under(tree):
                shutil.rmtree(tree, ignore_errors=True)
        return True

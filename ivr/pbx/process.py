"""Run the local Asterisk: render its config, start it in the background, probe, stop."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivr.cluster.kamailio import balancer_match, system_name
from ivr.config import PbxSettings, Settings
from ivr.credentials import Credentials
from ivr.pbx.render import PbxDirs, render_all
from ivr.pbx.tree import AsteriskInstall, PbxError, find_install
from ivr.telephony import personas

if TYPE_CHECKING:
    from ivr.telephony.ami import AmiHealth

SOCKET_PATH_MAX = 100  # AF_UNIX paths are limited to 108 bytes
EXTERNAL_HINT = (
    "pbx.external is set: Asterisk runs elsewhere (its own container) and is started and "
    "stopped there; `ivr pbx render` writes its config into DATA_DIR/pbx/etc"
)


@dataclass(frozen=True)
class PbxStatus:
    running: bool
    pid: int | None
    sip: bool
    ami: bool
    ari: bool
    detail: dict[str, str]
    # state (loopback, unchecked, checking, reachable, unreachable), uri, detail...
    trunk: dict[str, Any] = field(default_factory=dict)
    # the phones registered now: endpoint, uri, user_agent
    softphones: list[dict[str, str]] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.running and self.sip and self.ami and self.ari


def trunk_report(pbx: PbxSettings, health: AmiHealth) -> dict[str, Any]:
    """The outbound trunk as Asterisk sees it: is its far end reachable (qualify)?"""
    from ivr.telephony.ami import contacts_reachable

    if not pbx.trunk_host:
        return {"state": "loopback", "detail": "loops back to the simulated residents"}
    uri = health.trunk[0].uri if health.trunk else f"sip:{pbx.trunk_host}:{pbx.trunk_port}"
    every = pbx.trunk_qualify_seconds
    reachable = contacts_reachable(health.trunk)
    report: dict[str, Any] = {"uri": uri, "qualify_seconds": every}
    if every == 0:
        report["state"] = "unchecked"
        report["detail"] = (
            f"{uri}: not checked (pbx.trunk_qualify_seconds = 0: no SIP OPTIONS; "
            "every call is tried)"
        )
    elif reachable is True:
        rtt = next((c.roundtrip_ms for c in health.trunk if c.roundtrip_ms is not None), None)
        report["state"] = "reachable"
        report["roundtrip_ms"] = rtt
        report["detail"] = f"{uri} answers SIP OPTIONS (every {every} s" + (
            f", round trip {rtt:.1f} ms)" if rtt is not None else ")"
        )
    elif reachable is False:
        report["state"] = "unreachable"
        report["detail"] = (
            f"{uri} does not answer SIP OPTIONS (every {every} s): Asterisk refuses every "
            "outbound call until it answers. A far end that never answers OPTIONS (many SIP "
            "phones, some providers) needs pbx.trunk_qualify_seconds = 0"
        )
    else:
        report["state"] = "checking"
        report["detail"] = f"{uri}: no answer to SIP OPTIONS yet (every {every} s)"
    if pbx.trunk_register:
        status = next((r.status for r in health.registrations), "not registered")
        report["registration"] = status
        report["detail"] += f"; registration: {status}"
    return report


def sip_options_ping(host: str, port: int, timeout: float = 2.0) -> str | None:
    """Send a SIP OPTIONS over UDP; return the status line of the answer, or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.bind((host, 0))
        local_port = sock.getsockname()[1]
        call_id = uuid.uuid4().hex
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        request = (
            f"OPTIONS sip:ping@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{local_port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{host}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:ping@{host}:{port}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Accept: application/sdp\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        try:
            sock.sendto(request.encode(), (host, port))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data, _ = sock.recvfrom(65535)
                text = data.decode(errors="replace")
                if text.startswith("SIP/2.0 ") and call_id in text:
                    return text.split("\r\n", 1)[0]
        except OSError:
            return None
    return None


def port_in_use(host: str, port: int, kind: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


class PbxController:
    """The local Asterisk of one data directory."""

    def __init__(self, settings: Settings, credentials: Credentials) -> None:
        self.settings = settings
        self.credentials = credentials
        self.root = settings.data_dir / "pbx"
        self.pid_file = self.root / "asterisk.pid"
        self.log_file = self.root / "log" / "asterisk.out"

    # ------------------------------------------------------------------ layout
    def _run_dir(self) -> Path:
        run = self.root / "run"
        if len(str(run / "asterisk.ctl")) <= SOCKET_PATH_MAX:
            return run
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
        return Path("/tmp") / f"ivr-run-{digest}"

    def dirs(self, install: AsteriskInstall) -> PbxDirs:
        return PbxDirs(
            etc=self.root / "etc",
            modules=install.modules_dir,
            varlib=self.root / "lib",
            data=install.data_dir,
            spool=self.root / "spool",
            run=self._run_dir(),
            log=self.root / "log",
            sbin=install.binary.parent,
            sim_audio=self.root / "sim-audio",
        )

    def install(self) -> AsteriskInstall:
        install = find_install(self.settings)
        if install is None:
            raise PbxError(
                f"no Asterisk is built yet ({self.settings.tree_dir}): run `ivr pbx build`"
            )
        return install

    @property
    def recordings_dir(self) -> Path:
        return self.root / "spool" / "recording"

    # ------------------------------------------------------------------ render
    def render(self) -> PbxDirs:
        install = self.install()
        dirs = self.dirs(install)
        for path in (
            dirs.etc,
            dirs.varlib,
            dirs.spool,
            dirs.recordings,
            dirs.run,
            dirs.log,
            dirs.sim_audio,
            dirs.varlib / "agi-bin",
            dirs.varlib / "keys",
            dirs.spool / "tmp",
        ):
            path.mkdir(parents=True, exist_ok=True)
        os.chmod(dirs.etc, 0o700)
        files = render_all(
            self.settings.pbx,
            self.credentials,
            dirs,
            inbound_numbers=self.settings.inbound_numbers,
            call_limit_seconds=int(self.settings.telephony.max_call_seconds) + 60,
            balancer=balancer_match(self.settings),
            system_name=system_name(self.settings),
        )
        for name, text in files.items():
            target = dirs.etc / name
            tmp = target.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, target)
        render_sim_audio(dirs.sim_audio)
        return dirs

    # ------------------------------------------------------------------ process
    def pid(self) -> int | None:
        """The pid of our running Asterisk, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            cmdline = []
        if any(b"asterisk" in part for part in cmdline) and any(
            str(self.root).encode() in part for part in cmdline
        ):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def base_argv(self) -> list[str]:
        install = self.install()
        return [*install.argv(), "-C", str(self.root / "etc" / "asterisk.conf")]

    def check_ports(self) -> None:
        pbx = self.settings.pbx
        host = pbx.bind_address
        checks = [
            ("pbx.sip_port", pbx.sip_port, socket.SOCK_DGRAM, "udp"),
            ("pbx.ami_port", pbx.ami_port, socket.SOCK_STREAM, "tcp"),
            ("pbx.ari_port", pbx.ari_port, socket.SOCK_STREAM, "tcp"),
        ]
        for setting, port, kind, proto in checks:
            if port_in_use(host, port, kind):
                raise PbxError(
                    f"port {port}/{proto} on {host} ({setting}) is already in use: stop what "
                    f"uses it, or choose another port (IVR_{setting.upper().replace('.', '_')})"
                )

    def start(self, timeout: float = 30.0) -> int:
        """Start Asterisk in the background and wait until it is fully booted. Idempotent."""
        if self.settings.pbx.external:
            raise PbxError(EXTERNAL_HINT)
        pid = self.pid()
        if pid is not None:
            return pid
        self.check_ports()
        self.render()
        argv = [*self.base_argv(), "-f", "-n"]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.root,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise PbxError(
                    f"Asterisk exited at start (exit {proc.returncode}); last log lines:\n"
                    + self.logs(20)
                )
            out = self._rx("core waitfullybooted", timeout=max(1.0, deadline - time.monotonic()))
            if out is not None and "fully booted" in out.lower():
                return proc.pid
            time.sleep(0.1)
        self.stop()
        raise PbxError(f"Asterisk did not boot within {timeout:.0f} s:\n" + self.logs(20))

    def _rx(self, command: str, timeout: float = 10.0) -> str | None:
        try:
            proc = subprocess.run(
                [*self.base_argv(), "-rx", command],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return None
        if proc.returncode != 0:
            return None
        return proc.stdout

    def cli(self, command: str, timeout: float = 10.0) -> str:
        if self.pid() is None:
            raise PbxError("Asterisk is not running: run `ivr pbx start`")
        out = self._rx(command, timeout)
        if out is None:
            raise PbxError(f"the Asterisk CLI did not answer {command!r}")
        return out

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop Asterisk; True when one was running. Leaves no process behind."""
        if self.settings.pbx.external:
            raise PbxError(EXTERNAL_HINT)
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        run = self._run_dir()
        if run.name.startswith("ivr-run-"):
            shutil.rmtree(run, ignore_errors=True)
        return True

    def status(self) -> PbxStatus:
        import asyncio

        from ivr.telephony.ami import ami_health
        from ivr.telephony.ari import ari_ping

        pid = self.pid()
        pbx = self.settings.pbx
        detail: dict[str, str] = {}
        trunk: dict[str, Any] = {}
        softphones: list[dict[str, str]] = []
        if pid is None and not pbx.external:
            return PbxStatus(False, None, False, False, False, {"asterisk": "not running"})
        sip = sip_options_ping(pbx.bind_address, pbx.sip_port)
        detail["sip"] = sip or "no answer"
        try:
            health = asyncio.run(ami_health(self.settings, self.credentials, timeout=5))
            detail["ami"] = (
                f"fully booted={health.fully_booted}, endpoints={len(health.endpoints)}, "
                f"channels={health.channels}"
            )
            ami_ok = health.fully_booted
            trunk = trunk_report(pbx, health)
            softphones = [
                {"endpoint": c.endpoint, "uri": c.uri, "user_agent": c.user_agent}
                for c in health.registered
                if c.endpoint != "trunk"
            ]
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            detail["ami"] = f"error: {exc}"
            ami_ok = False
        try:
            version = asyncio.run(ari_ping(self.settings, self.credentials))
            detail["ari"] = f"Asterisk {version}"
            ari_ok = True
        except Exception as exc:  # noqa: BLE001
            detail["ari"] = f"error: {exc}"
            ari_ok = False
        running = pid is not None or sip is not None  # pbx.external: it answers SIP
        return PbxStatus(running, pid, sip is not None, ami_ok, ari_ok, detail, trunk, softphones)

    def logs(self, lines: int = 50) -> str:
        out: list[str] = []
        for path in (self.log_file, self.root / "log" / "messages.log"):
            if path.exists():
                out.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(out[-lines:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone once reaped.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def render_sim_audio(target: Path) -> None:
    """Speak the simulated residents' answers (espeak-ng) into 8 kHz mono WAVs, once."""
    from ivr.speech.tts import synthesize_wav

    for code, (language, text) in personas.SPOKEN.items():
        wav = target / f"{code:02d}.wav"
        if not wav.exists():
            synthesize_wav(text, language, wav)

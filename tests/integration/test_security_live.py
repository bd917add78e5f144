"""Secrets stay out of every log; nothing our processes hold is bound beyond loopback.

Real Asterisk, a real `ivr -v telephony` subprocess, a real baresip softphone call and a
real call through a trunk that has a password (Asterisk calls itself through it); all on
loopback.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.bootstrap import App
from ivr.pbx.process import sip_options_ping
from ivr.softphone import accounts
from ivr.store.db import make_engine
from tests.support.baresip import Baresip
from tests.support.cli import run_ivr
from tests.support.instance import destroy, make_instance, running_instance, start_or_fail
from tests.support.worker import Worker

pytestmark = pytest.mark.pbx

TRUNK_PASSWORD = "Trunk-pw-" + "x7Qm2Lr9Vd4K"  # distinctive, so a leak is found by grep


def _calls(app: App) -> list[str]:
    engine = make_engine(app.settings.database_url)
    try:
        with engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(sa.text("SELECT status FROM calls")).all()]
    finally:
        engine.dispose()


def _channels(app: App) -> int:
    out = app.pbx().cli("core show channels count")
    return int(out.split("active channel")[0].split()[-1])


def _wait(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture()
def trunk_app() -> Iterator[tuple[App, dict[str, str]]]:
    """An instance whose trunk has a user name and password (rendered into pjsip.conf) and
    points back at this Asterisk, so a call through it is answered by our own lines."""

    def trunk(env: dict[str, str]) -> dict[str, str]:
        return {
            "IVR_PBX_TRUNK_HOST": "127.0.0.1",
            "IVR_PBX_TRUNK_PORT": env["IVR_PBX_SIP_PORT"],
            "IVR_PBX_TRUNK_USERNAME": "kunta-trunk",
            "IVR_PBX_TRUNK_PASSWORD": TRUNK_PASSWORD,
            "IVR_PBX_TRUNK_REGISTER": "true",
        }

    with running_instance("ivr-secrets-", trunk) as instance:
        yield instance


def _secrets(app: App) -> dict[str, str]:
    creds = app.credentials
    found = {
        "AMI password": creds.ami_password,
        "ARI password": creds.ari_password,
        "web secret key": creds.web_secret_key,
        "trunk password": app.settings.pbx.trunk_password,
        # HTTP basic authentication carries this (an encoding of the password, not a hash)
        "ARI basic-auth token": base64.b64encode(
            f"{creds.ari_username}:{creds.ari_password}".encode()
        ).decode(),
        "AMI basic-auth token": base64.b64encode(
            f"{creds.ami_username}:{creds.ami_password}".encode()
        ).decode(),
    }
    for name, password in creds.softphones.items():
        found[f"{name} SIP password"] = password
    assert all(found.values())
    return found


def test_no_secret_appears_in_any_log(
    trunk_app: tuple[App, dict[str, str]], tmp_path: Path
) -> None:
    app, env = trunk_app
    pjsip = (app.settings.data_dir / "pbx" / "etc" / "pjsip.conf").read_text()
    assert f"password = {TRUNK_PASSWORD}" in pjsip  # the trunk password is really in use
    worker_log = tmp_path / "worker.log"
    worker = Worker(env, worker_log)  # `ivr -v telephony`: debug logging of every library
    try:
        account = next(
            a for a in accounts(app.settings, app.credentials) if a.username == "softphone1"
        )
        with Baresip(account.baresip_line(), lifetime=60) as phone:
            phone.wait_registered(10)
            phone.dial("100")
            phone.wait_event("CALL_ESTABLISHED", 15)
            phone.send_digits("1", gap=1.0)
            time.sleep(1.0)  # let the flow hear the key before the caller leaves
            phone.hangup()
            phone.wait_event("CALL_CLOSED", 10)
        # Asterisk calls itself through the trunk (the password's endpoint): number 101
        # arrives from the trunk and the worker answers it.
        app.pbx().cli("channel originate PJSIP/101@trunk application Wait 4")
        _wait(lambda: len(_calls(app)) >= 2, 30, "two calls in the database")
        _wait(lambda: "active" not in _calls(app) and _channels(app) == 0, 30, "calls to end")
        status = run_ivr(env, "-v", "pbx", "status")  # AMI login + ARI over HTTP, at debug
        assert "ami: ok" in status.stdout and "ari: ok" in status.stdout, (
            status.stdout + status.stderr
        )
    finally:
        assert worker.stop() == 0, worker_log.read_text()[-3000:]
    assert len(_calls(app)) >= 2

    logs: dict[str, str] = {
        "`ivr -v telephony` output": worker_log.read_text(errors="replace"),
        "`ivr -v pbx status` output": status.stdout + status.stderr,
    }
    data = app.settings.data_dir
    for folder in (data / "logs", data / "pbx" / "log"):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                logs[str(path)] = path.read_text(errors="replace")
    assert any("asterisk.out" in name for name in logs), sorted(logs)
    assert "DEBUG" in logs["`ivr -v telephony` output"]  # the debug loggers did run
    leaks = [
        f"{secret_name} in {where}: "
        + next(line for line in text.splitlines() if value in line)[:300]
        for secret_name, value in _secrets(app).items()
        for where, text in logs.items()
        if value in text
    ]
    assert not leaks, "secrets in logs:\n" + "\n".join(leaks)


# ---------------------------------------------------------------------------- sockets


@dataclass(frozen=True)
class HeldSocket:
    pid: int
    process: str
    proto: str  # tcp, tcp6, udp, udp6
    local: tuple[str, int]
    state: str  # "LISTEN", "ESTABLISHED", ... (TCP) or "" (UDP)

    def __str__(self) -> str:
        host = f"[{self.local[0]}]" if ":" in self.local[0] else self.local[0]
        state = f" {self.state}" if self.state else ""
        return f"{self.proto} {host}:{self.local[1]}{state} held by {self.process} ({self.pid})"


TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN"}


def _address(text: str) -> tuple[str, int]:
    """/proc/net/{tcp,udp}[6] "0100007F:1F90" (each 32-bit word in host byte order)."""
    hex_ip, hex_port = text.split(":")
    raw = bytes.fromhex(hex_ip)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words)), int(hex_port, 16)


def held_sockets(pid: int, process: str) -> list[HeldSocket]:
    """Every TCP and UDP socket (v4 and v6) that the process (all its threads) holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink()
        except FileNotFoundError:
            continue
        if str(target).startswith("socket:["):
            inodes.add(str(target)[len("socket:[") : -1])
    held = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                state = TCP_STATES.get(fields[3], fields[3]) if proto.startswith("tcp") else ""
                held.append(HeldSocket(pid, process, proto, _address(fields[1]), state))
    return held


def _loopback(host: str) -> bool:
    address = ipaddress.ip_address(host)
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _silent(sock_info: HeldSocket) -> str | None:
    """Probe a wildcard UDP socket from loopback with a DNS query, a SIP OPTIONS and junk:
    None when nothing at all comes back, else what did."""
    v6 = sock_info.proto == "udp6"
    target = ("::1" if v6 else "127.0.0.1", sock_info.local[1])
    probes = [
        bytes.fromhex("abcd01000001000000000000076578616d706c6503636f6d0000010001"),
        b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n"
        b"From: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: probe\r\n"
        b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        bytes(range(256)),
    ]
    with socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(target)  # connected: an ICMP "port unreachable" would show as an error
        for probe in probes:
            s.send(probe)
            s.settimeout(1.0)
            try:
                answer = s.recv(65535)
            except TimeoutError:
                continue
            except OSError as exc:
                return f"error {exc}"
            return f"answered {answer[:80]!r}"
    return None


def test_every_socket_our_processes_hold_is_on_loopback(tmp_path: Path) -> None:
    """Asterisk (every module, during a call with RTP) and `ivr telephony`."""
    app, env = make_instance(prefix="ivr-sockets-")
    try:
        start_or_fail(app)
        pbx = app.settings.pbx
        asterisk = app.pbx().pid()
        assert asterisk is not None
        worker_log = tmp_path / "worker.log"
        worker = Worker(env, worker_log)
        try:
            # A simulated resident who speaks and stays on the line: both legs hold RTP.
            app.pbx().cli("channel originate PJSIP/+358508010000@trunk application Wait 20")
            _wait(lambda: _channels(app) >= 2, 20, "the call's two channels")
            held = held_sockets(asterisk, "asterisk") + held_sockets(worker.proc.pid, "ivr")
            app.pbx().cli("channel request hangup all")
        finally:
            assert worker.stop() == 0, worker_log.read_text()[-3000:]

        listing = "\n".join(str(s) for s in held)
        rtp = [
            s
            for s in held
            if s.proto.startswith("udp") and pbx.rtp_start <= s.local[1] <= pbx.rtp_end
        ]
        assert len(rtp) >= 2, f"no RTP sockets during the call:\n{listing}"
        assert any(s.state == "LISTEN" and s.local[1] == pbx.ari_port for s in held), listing
        assert any(s.state == "LISTEN" and s.local[1] == pbx.ami_port for s in held), listing
        assert any(s.proto == "udp" and s.local[1] == pbx.sip_port for s in held), listing

        # pjproject's DNS resolver (created by res_pjsip at load from the system's
        # nameservers) binds one UDP socket on 0.0.0.0 and one on [::], ephemeral ports;
        # nothing in Asterisk's configuration binds or closes them. They are allowed only
        # if they are exactly that pair, in Asterisk, and answer nothing.
        wildcard = [s for s in held if not _loopback(s.local[0])]
        resolver = [
            s
            for s in wildcard
            if s.pid == asterisk
            and s.proto in ("udp", "udp6")
            and s.local[0] in ("0.0.0.0", "::")
            and s.local[1] >= 32768
            and not pbx.rtp_start <= s.local[1] <= pbx.rtp_end
        ]
        outside = [s for s in wildcard if s not in resolver]
        assert not outside, "bound beyond loopback:\n" + "\n".join(map(str, outside))
        assert len({s.proto for s in resolver}) == len(resolver) <= 2, listing
        answers = {str(s): _silent(s) for s in resolver}
        assert all(a is None for a in answers.values()), answers
        assert sip_options_ping(pbx.bind_address, pbx.sip_port) is not None  # still fine
        status = run_ivr(env, "pbx", "status")
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        destroy(app)

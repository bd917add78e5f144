"""Kamailio (Debian's package) from `ivr cluster render` output as a real process, and SIPp
callers that dial a line through it and answer the flow's first question.

``Kamailio(env, workdir)`` renders the config with the real command (`ivr cluster render
--check`), runs ``kamailio -DD -E`` in its own session with its own pid file, and is ready
once its JSON-RPC socket answers. ``SippCallers`` places a batch of calls with SIPp's UAC:
INVITE (PCMU + telephone-event), ACK, a pause, the key "1" as SIP INFO (application/
dtmf-relay, which Asterisk takes whatever the endpoint's dtmf_mode), then it waits for the
IVR's BYE. Every From user is ``<tag>c<n>`` so that a batch's calls can be found in the
database (calls.remote_number).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ivr.cluster import kamailio
from ivr.config import load_settings
from tests.support.cli import run_ivr
from tests.support.ports import free_port
from tests.support.tools import tool

HOST = "127.0.0.1"

UAC_ANSWERING_ONE_KEY = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller: dials [service], presses 1 after a pause, waits for the BYE">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[tag]c[call_number]@[local_ip]:[local_port]>;tag=[pid]t[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[tag]c[call_number]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:[tag]c[call_number]@[local_ip]:[local_port]>;tag=[pid]t[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:[tag]c[call_number]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause/>
  <send retrans="500">
    <![CDATA[
      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:[tag]c[call_number]@[local_ip]:[local_port]>;tag=[pid]t[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 INFO
      Contact: <sip:[tag]c[call_number]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal=1
      Duration=160

    ]]>
  </send>
  <recv response="200"/>
  <recv request="BYE" timeout="30000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


class Kamailio:
    """Kamailio on the config `ivr cluster render` wrote for ``env``; a context manager."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        self.env.update(env)
        self.workdir = workdir
        self.log = workdir / "kamailio.log"
        self.settings = load_settings(environ=env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.render_output = ""

    def start(self, timeout: float = 15) -> Kamailio:
        render = run_ivr(self.env, "cluster", "render", "--check", timeout=60)
        self.render_output = render.stdout + render.stderr
        if render.returncode != 0:
            pytest.fail(f"`ivr cluster render --check` failed:\n{self.render_output}")
        argv = kamailio.run_argv(self.settings)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.states()
                return self
            except kamailio.KamailioError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"Kamailio did not start ({exc}):\n{self.log_tail()}")
            time.sleep(0.1)

    def states(self) -> dict[str, str]:
        return kamailio.node_states(self.settings)

    def wait_state(self, node: str, state: str, timeout: float) -> float:
        """Seconds until Kamailio reports ``node`` in ``state`` (AssertionError after timeout)."""
        began = time.monotonic()
        seen: dict[str, str] = {}
        while time.monotonic() - began < timeout:
            seen = self.states()
            if seen.get(node) == state:
                return time.monotonic() - began
            time.sleep(0.05)
        raise AssertionError(f"node {node} not {state} within {timeout} s: {seen}")

    def log_tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-3000:] or "(no output)"

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def __enter__(self) -> Kamailio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SippCallers:
    """Batches of SIPp UAC calls to ``target`` (HOST:PORT), each dialling ``service``."""

    def __init__(self, workdir: Path, target: str) -> None:
        self.workdir = workdir
        self.target = target
        self.scenario = workdir / "uac-one-key.xml"
        self.scenario.write_text(UAC_ANSWERING_ONE_KEY, encoding="iso-8859-1")

    def start(
        self, tag: str, calls: int, service: str, rate: int = 10, pause_ms: int = 2000
    ) -> subprocess.Popen[bytes]:
        """Start the batch; ``wait`` for it. ``tag`` names its calls' From users."""
        out = self.workdir / f"sipp-{tag}.log"
        argv = [
            tool("sipp"),
            self.target,
            *("-sf", str(self.scenario), "-s", service, "-key", "tag", tag),
            *("-i", HOST, "-p", str(free_port()), "-mi", HOST, "-mp", str(free_port())),
            *("-m", str(calls), "-r", str(rate), "-l", str(calls), "-d", str(pause_ms)),
            *("-nostdin", "-trace_err", "-error_file", str(self.workdir / f"sipp-{tag}.err")),
        ]
        with out.open("wb") as fh:
            return subprocess.Popen(
                argv,
                cwd=self.workdir,
                stdout=fh,
                stderr=fh,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait(self, proc: subprocess.Popen[bytes], tag: str, timeout: float) -> int:
        """SIPp's exit status (0: every call went through the scenario)."""
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise AssertionError(
                f"SIPp batch {tag} ran past {timeout} s: {self.tail(tag)}"
            ) from None

    def run(self, tag: str, calls: int, service: str, timeout: float = 60, **kw: int) -> int:
        return self.wait(self.start(tag, calls, service, **kw), tag, timeout)

    def tail(self, tag: str) -> str:
        parts = []
        for suffix in ("log", "err"):
            path = self.workdir / f"sipp-{tag}.{suffix}"
            if path.exists():
                parts.append(path.read_text(errors="replace")[-1500:])
        return "\n".join(parts) or "(no output)"

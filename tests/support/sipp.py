"""SIPp (Debian's ``sip-tester``) as a far end on loopback: answers calls, never OPTIONS.

Many SIP phones and some providers never answer SIP OPTIONS. This far end does the same:
an INVITE is answered (180, then 200 with SDP), the caller's BYE gets its 200; an OPTIONS
is taken in and left without any answer. With ``calls=N`` SIPp exits after N calls, with
exit status 0 only when every one of them went through the whole scenario.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tests.support.ports import free_port, port_free
from tests.support.tools import tool

HOST = "127.0.0.1"

# An OPTIONS matches the optional first step and jumps to the end: no answer is sent.
UAS_IGNORING_OPTIONS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answers INVITE, leaves OPTIONS unanswered">
  <recv request="OPTIONS" optional="true" next="unanswered"/>
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]far[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]far[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=far 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
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
  <label id="unanswered"/>
</scenario>
"""


class SippFarEnd:
    """One SIPp UAS process on a free loopback port; a context manager."""

    def __init__(self, workdir: Path, calls: int | None = None) -> None:
        self.workdir = workdir
        self.calls = calls
        self.port = free_port()
        self.media_port = free_port()
        self.messages = workdir / "sipp-messages.log"
        self.output = workdir / "sipp-output.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> SippFarEnd:
        sipp = tool("sipp")
        scenario = self.workdir / "uas-ignoring-options.xml"
        scenario.write_text(UAS_IGNORING_OPTIONS, encoding="iso-8859-1")
        argv = [
            sipp,
            *("-sf", str(scenario), "-i", HOST, "-p", str(self.port)),
            *("-mi", HOST, "-mp", str(self.media_port), "-nostdin"),
            *("-trace_msg", "-message_file", str(self.messages)),
        ]
        if self.calls is not None:
            argv += ["-m", str(self.calls)]
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        deadline = time.monotonic() + timeout
        while port_free(self.port, socket.SOCK_DGRAM):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(
                    f"SIPp did not start listening on {HOST}:{self.port}: {self.log_tail()}"
                )
            time.sleep(0.05)
        return self

    def wait(self, timeout: float) -> int:
        """SIPp's exit status once it has run its ``calls`` (0: every call succeeded)."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"SIPp did not finish its calls within {timeout} s: {self.log_tail()}"
            ) from None

    def _blocks(self, direction: str) -> list[str]:
        """The traced messages SIPp ``received`` or ``sent``."""
        if not self.messages.exists():
            return []
        text = self.messages.read_text(errors="replace").replace("\r", "")
        return [
            block
            for block in text.split("\n-----------------------------------------------")
            if f"message {direction}" in block
        ]

    def received(self, method: str) -> int:
        """How many ``method`` requests SIPp received (its message trace)."""
        return sum(1 for b in self._blocks("received") if f"\n{method} sip:" in b)

    def answered(self, method: str) -> int:
        """How many responses SIPp sent to ``method`` requests (by their CSeq)."""
        return sum(
            1
            for b in self._blocks("sent")
            if "\nSIP/2.0 " in b and re.search(rf"^CSeq:\s*\d+ {method}$", b, re.M)
        )

    def log_tail(self) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return text[-1500:] or "(no output)"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # SIPp ends its test and writes its logs
            try:
                self.proc.wait(5)
                return
            except subprocess.TimeoutExpired:
                self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> SippFarEnd:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""A real baresip softphone for end-to-end tests, driven over its ctrl_tcp socket.

One :class:`Baresip` is one baresip process with one SIP account, a private config
directory and private loopback ports. It talks only to 127.0.0.1::

    with Baresip(account.baresip_line(answermode="auto")) as phone:
        phone.wait_registered(5)
        phone.dial("100")
        phone.wait_event("CALL_ESTABLISHED", 10)
        phone.send_digits("47#")
        phone.hangup()

Facts about baresip 1.0.0 (Debian bookworm ``baresip-core``) this relies on:

* ctrl_tcp speaks netstring-framed JSON (``LEN:{json},``) both ways. Commands are
  ``{"command": ..., "params": ..., "token": ...}``; replies carry ``"response": true``
  (and the token); events carry ``"event": true`` and ``"type"``.
* The commands (``dial``, ``sndcode``, ``hangup``, ``uanew`` ...) live in ``menu.so``;
  without it every command answers "command not found".
* ``sip_listen 127.0.0.1:P`` also opens TCP P and TLS on P+1, so the ctrl_tcp port must
  not be P+1.
* An account in the ``accounts`` file registers before the ctrl_tcp client can connect,
  so its REGISTER_OK would be lost. The account is therefore added after connecting,
  with ``uanew <the same account line>``, which parses the line exactly as the file does.
* When the ``aufile`` audio source reaches the end of its WAV, menu.so hangs the call up
  (CALL_CLOSED, param "end of file"), so the generated source WAV outlasts the process.
  aufile reads the whole WAV into memory at call setup.
* ``audio_player alsa,null`` (with ``module alsa.so``) is a working null player.
* The registered contact is ``sip:<user>-0x<pointer>@127.0.0.1:<sip port>``.
* ``-t SECONDS`` makes baresip quit by itself: a safety net if a test leaks it.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
import wave
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.ports import free_port, port_free

HOST = "127.0.0.1"
MODULE_PATH = "/usr/lib/baresip/modules"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STATUS = re.compile(r"^\s*(\[\d+:\d\d:\d\d\] audio=.*)?$")  # menu.so's call status lines
_EOF = object()  # put on the queues when the ctrl_tcp connection ends

Event = dict[str, Any]


class BaresipError(RuntimeError):
    """baresip is missing, did not start, or did not do what a test waited for."""


def _pick_ports() -> tuple[int, int]:
    """(SIP port, ctrl_tcp port): SIP P needs UDP+TCP P and TCP P+1 (TLS) free."""
    for _ in range(50):
        sip = free_port()
        if not port_free(sip + 1):
            continue
        ctrl = free_port(also_udp=False)
        if ctrl not in (sip, sip + 1):
            return sip, ctrl
    raise BaresipError("no free loopback ports for baresip")


def write_tone_wav(path: Path, seconds: float, rate: int = 8000, hz: float = 440.0) -> None:
    """A quiet 16-bit mono sine tone: an audio source that is never silent."""
    frames = int(seconds * rate)
    one_second = b"".join(
        struct.pack("<h", int(2000 * math.sin(2 * math.pi * hz * i / rate))) for i in range(rate)
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        whole, rest = divmod(frames, rate)
        for _ in range(whole):
            out.writeframes(one_second)
        out.writeframes(one_second[: rest * 2])


class Baresip:
    """One real baresip process with one account, driven over ctrl_tcp (context manager)."""

    def __init__(
        self,
        account_line: str,
        *,
        audio_file: Path | None = None,
        lifetime: int = 60,
        start_timeout: float = 10.0,
        binary: str = "baresip",
    ) -> None:
        self.account_line = account_line
        self.audio_file = audio_file
        self.lifetime = lifetime
        self.start_timeout = start_timeout
        self.binary = binary
        self.events: list[Event] = []  # every event received, in order
        self.sip_port = 0
        self.ctrl_port = 0
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._event_q: queue.Queue[object] = queue.Queue()
        self._response_q: queue.Queue[object] = queue.Queue()
        self._send_lock = threading.Lock()
        self._final_log = ""

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Baresip:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> Baresip:
        """Start baresip, connect to ctrl_tcp and add the account (which starts registering)."""
        exe = shutil.which(self.binary)
        if exe is None:
            raise BaresipError(
                f"{self.binary!r} is not installed (Debian/Ubuntu: apt-get install baresip-core)"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="ivr-baresip-"))
        self.sip_port, self.ctrl_port = _pick_ports()
        source = self.audio_file
        if source is None:
            source = self._dir / "source.wav"
            write_tone_wav(source, self.lifetime + 30)
        (self._dir / "config").write_text(self._config(source))
        (self._dir / "accounts").write_text("")  # the account comes with `uanew`, see above
        self._proc = subprocess.Popen(
            [exe, "-f", str(self._dir), "-4", "-t", str(self.lifetime)],
            stdin=subprocess.DEVNULL,
            stdout=(self._dir / "baresip.log").open("wb"),
            stderr=subprocess.STDOUT,
            cwd=self._dir,
        )
        try:
            self._connect()
            self._reader = threading.Thread(
                target=self._read_loop, name="baresip-ctrl", daemon=True
            )
            self._reader.start()
            self.command("uanew", self.account_line)
        except BaseException:
            self.close()
            raise
        return self

    def _config(self, source: Path) -> str:
        lines = [
            f"sip_listen {HOST}:{self.sip_port}",
            f"net_interface {HOST}",
            f"dns_server {HOST}:53",
            f"audio_source aufile,{source}",
            "audio_player alsa,null",
            "audio_alert alsa,null",
            f"module_path {MODULE_PATH}",
            "module g711.so",
            "module aufile.so",
            "module alsa.so",
            "module_app account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen {HOST}:{self.ctrl_port}",
        ]
        return "\n".join(lines) + "\n"

    def _connect(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last: OSError | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BaresipError(
                    f"baresip exited with status {self._proc.returncode} while starting"
                    + self._log_suffix()
                )
            try:
                self._sock = socket.create_connection((HOST, self.ctrl_port), timeout=1.0)
                self._sock.settimeout(None)
                return
            except OSError as exc:
                last = exc
                time.sleep(0.05)
        raise BaresipError(
            f"baresip's ctrl_tcp on {HOST}:{self.ctrl_port} did not answer within "
            f"{self.start_timeout} s ({last})" + self._log_suffix()
        )

    def close(self) -> None:
        """Stop baresip (terminate, then kill) and remove its config directory."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(3)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(3)
            self._proc = None
        if self._reader is not None:
            self._reader.join(2)
            self._reader = None
        if self._dir is not None:
            self._final_log = self._read_log()
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # ------------------------------------------------------------------ log
    def _read_log(self) -> str:
        if self._dir is None:
            return self._final_log
        try:
            text = (self._dir / "baresip.log").read_text(errors="replace")
        except OSError:
            return ""
        lines = _ANSI.sub("", text).replace("\r", "\n").splitlines()
        return "\n".join(line for line in lines if not _STATUS.match(line))

    @property
    def log(self) -> str:
        """baresip's own output (stdout and stderr), without colour codes."""
        return self._read_log()

    def _log_suffix(self) -> str:
        return "\n--- baresip log ---\n" + (self.log.strip() or "(empty)")

    # ------------------------------------------------------------------ ctrl_tcp
    def _read_loop(self) -> None:
        sock = self._sock
        buf = b""
        try:
            while sock is not None:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while True:
                    colon = buf.find(b":")
                    if colon < 0:
                        break
                    size = int(buf[:colon])
                    end = colon + 1 + size
                    if len(buf) < end + 1:
                        break
                    message = json.loads(buf[colon + 1 : end])
                    buf = buf[end + 1 :]  # drop the trailing ","
                    if message.get("event"):
                        self.events.append(message)
                        self._event_q.put(message)
                    elif message.get("response"):
                        self._response_q.put(message)
        except (OSError, ValueError):
            pass
        finally:
            self._event_q.put(_EOF)
            self._response_q.put(_EOF)

    def _send(self, payload: dict[str, str]) -> None:
        if self._sock is None:
            raise BaresipError("baresip is not running")
        data = json.dumps(payload).encode()
        with self._send_lock:
            self._sock.sendall(str(len(data)).encode() + b":" + data + b",")

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> str:
        """Run a baresip (menu) command; return its text answer, raise if it failed."""
        token = uuid.uuid4().hex
        self._send({"command": command, "params": params, "token": token})
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise queue.Empty
                reply = self._response_q.get(timeout=remaining)
            except queue.Empty:
                raise BaresipError(
                    f"baresip did not answer {command!r} within {timeout} s" + self._log_suffix()
                ) from None
            if reply is _EOF:
                self._response_q.put(_EOF)
                raise BaresipError(
                    f"baresip's ctrl_tcp closed while waiting for {command!r}" + self._log_suffix()
                )
            assert isinstance(reply, dict)
            if reply.get("token") != token:
                continue
            if not reply.get("ok"):
                raise BaresipError(
                    f"baresip refused {command} {params!r}: {reply.get('data')!r}"
                    + self._log_suffix()
                )
            return str(reply.get("data", ""))

    def wait_event(self, name: str, timeout: float, fail_on: tuple[str, ...] = ()) -> Event:
        """The next event of type ``name`` (events before it are consumed, kept in .events).

        An event whose type is in ``fail_on`` arriving first raises :class:`BaresipError`.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise queue.Empty
                item = self._event_q.get(timeout=remaining)
            except queue.Empty:
                seen = [e.get("type") for e in self.events]
                raise BaresipError(
                    f"baresip sent no {name} within {timeout} s (events so far: {seen})"
                    + self._log_suffix()
                ) from None
            if item is _EOF:
                self._event_q.put(_EOF)
                raise BaresipError(
                    f"baresip's ctrl_tcp closed while waiting for {name}" + self._log_suffix()
                )
            assert isinstance(item, dict)
            if item.get("type") == name:
                return item
            if item.get("type") in fail_on:
                raise BaresipError(
                    f"baresip sent {item.get('type')} ({item.get('param', '')}) "
                    f"while waiting for {name}: {item}" + self._log_suffix()
                )

    # ------------------------------------------------------------------ phone
    def wait_registered(self, timeout: float = 5.0) -> Event:
        """Wait for REGISTER_OK; a REGISTER_FAIL first raises with baresip's log."""
        return self.wait_event("REGISTER_OK", timeout, fail_on=("REGISTER_FAIL",))

    def dial(self, number: str) -> None:
        """Call ``number`` at the account's server (``dial`` adds the account's domain)."""
        self.command("dial", number)

    def send_digits(self, digits: str, gap: float = 0.3) -> None:
        """Send DTMF (RFC 4733), one ``sndcode`` per digit, ``gap`` seconds apart."""
        for i, digit in enumerate(digits):
            if i:
                time.sleep(gap)
            self.command("sndcode", digit)

    def hangup(self) -> None:
        self.command("hangup")

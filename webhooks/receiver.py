#!/usr/bin/env python3
"""A sample webhook receiver: Python's standard library only.

It verifies every request per Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``; the timestamp must be
within five minutes), answers 401 to a bad one, and handles each ``webhook-id`` once: a
retry of a message already handled is answered 200 and ignored (delivery is at least once).

    python3 webhooks/receiver.py --secret whsec_... [--port 8000]

During a secret rotation the sender signs with both secrets, so the old secret and the new
one are each accepted; you may also give --secret twice. A real receiver keeps the seen ids
in its database (with the work the event starts, in one transaction), not in memory.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 300


class BadSignature(ValueError):
    pass


def verify(
    secrets: list[str], headers: dict[str, str], body: bytes, now: float | None = None
) -> dict[str, Any]:
    """The event (parsed JSON) if one signature matches one of ``secrets``; else raise."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id", "")
    stamp = lower.get("webhook-timestamp", "")
    signatures = lower.get("webhook-signature", "").split()
    if not (msg_id and stamp and signatures):
        raise BadSignature("missing webhook headers")
    if not stamp.isdigit():
        raise BadSignature("bad webhook-timestamp")
    if abs((time.time() if now is None else now) - int(stamp)) > TOLERANCE_SECONDS:
        raise BadSignature("webhook-timestamp too old or too new")
    signed = f"{msg_id}.{stamp}.".encode() + body
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for given in signatures:
            version, _, value = given.partition(",")
            if version == "v1" and hmac.compare_digest(value, expected):
                event: dict[str, Any] = json.loads(body)
                return event
    raise BadSignature("no matching signature")


class Receiver:
    """The receiving app. ``handle(event)`` runs once per webhook-id. The test knobs:
    ``status`` (answer this instead of 200) and ``hang_seconds`` (answer this late)."""

    def __init__(
        self,
        secrets: list[str],
        handle: Callable[[dict[str, Any]], None] | None = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.secrets = list(secrets)
        self.handle = handle or (lambda event: print(json.dumps(event), flush=True))
        self.now = now
        self.seen: dict[str, dict[str, Any]] = {}  # webhook-id -> event, in arrival order
        self.requests = 0  # every POST, bad or repeated included
        self.rejected = 0
        self.repeats = 0
        self.status = 200
        self.hang_seconds = 0.0
        self.lock = threading.Condition()

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests += 1
            status, hang = self.status, self.hang_seconds
        if hang:
            time.sleep(hang)  # the sample's way of being slow: the sender times out
        if status != 200:
            with self.lock:
                self.lock.notify_all()
            return status
        try:
            event = verify(self.secrets, headers, body, self.now())
        except (BadSignature, ValueError):
            with self.lock:
                self.rejected += 1
                self.lock.notify_all()
            return 401
        msg_id = headers.get("webhook-id") or headers.get("Webhook-Id") or ""
        with self.lock:
            first = msg_id not in self.seen
            if first:
                self.seen[msg_id] = event
            else:
                self.repeats += 1
            self.lock.notify_all()
        if first:
            self.handle(event)
        return 200

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        """Start serving in a thread; ``server.server_address`` has the port."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.receive(headers, body)
                payload = b'{"ok":true}' if status == 200 else b'{"ok":false}'
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the sender gave up (timed out)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(predicate, timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", action="append", required=True, help="whsec_... (repeatable)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = Receiver(args.secret).serve(args.host, args.port)
    print(f"listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()

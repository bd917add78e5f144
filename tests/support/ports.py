"""Free loopback ports for test instances (so two data directories never interfere)."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM, also_udp: bool = True) -> int:
    """A port free on 127.0.0.1 for TCP (and UDP when ``also_udp``)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if also_udp:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return int(port)
    raise RuntimeError("no free port found")


def port_free(port: int, kind: int = socket.SOCK_STREAM) -> bool:
    """Whether ``port`` on 127.0.0.1 can be bound now (TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_range(size: int, start: int = 20000, end: int = 60000) -> int:
    """The start of ``size`` consecutive UDP ports that are free now."""
    for base in range(start, end - size, size):
        ok = True
        for port in range(base, base + size, 50):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range found")

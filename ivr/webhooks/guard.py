"""Where a webhook may go: http(s) URLs whose host resolves only to public addresses.

Loopback, link-local, private (RFC 1918, ULA, CGNAT), multicast, reserved and unspecified
addresses are refused unless ``[webhooks] allow_private`` is on: a subscription must not
reach the installation's internal services. Every address the host resolves to is checked,
and the POST connects to one of the checked addresses (no second lookup an attacker's DNS
could answer differently)."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(ValueError):
    """The URL is malformed, or its host is (or resolves to) a refused address."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query


def parse_url(url: str) -> Target:
    """The URL's parts, or AddressRefused saying what is wrong with it."""
    if len(url) > 2000:
        raise AddressRefused("the URL is longer than 2000 characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise AddressRefused("not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("the URL must start with https:// (or http://)")
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    if parts.username or parts.password:
        raise AddressRefused("the URL must not contain a user name or password")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname, port or default, path)


def refused(ip: IpAddress) -> bool:
    """Whether ``ip`` is one of the addresses a webhook must not reach by default."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def resolve(target: Target, *, allow_private: bool) -> list[IpAddress]:
    """Every address of the target's host; AddressRefused if any is refused."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"the host {target.host} cannot be resolved: {exc}") from None
    addresses: list[IpAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise AddressRefused(f"the host {target.host} has no address")
    if not allow_private:
        for ip in addresses:
            if refused(ip):
                raise AddressRefused(
                    f"the host {target.host} resolves to {ip}, a loopback, link-local or "
                    "private address (refused: [webhooks] allow_private is off)"
                )
    return addresses


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, ip: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, ip: str, host: str, port: int, timeout: float) -> None:
        self._context = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._context)
        self._ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class Response:
    status: int
    snippet: str  # the start of the body, as text


SNIPPET = 500


def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool
) -> Response:
    """POST ``body`` to ``url`` (no redirects followed). Raises AddressRefused, OSError
    (connection, timeout) or http.client.HTTPException."""
    target = parse_url(url)
    ip = resolve(target, allow_private=allow_private)[0]
    cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = cls(str(ip), target.host, target.port, timeout)
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={
                **headers,
                "content-type": "application/json",
                "user-agent": "ivr-webhooks/1",
            },
        )
        response = conn.getresponse()
        data = response.read(SNIPPET * 4)
        return Response(response.status, data.decode("utf-8", "replace")[:SNIPPET])
    finally:
        conn.close()

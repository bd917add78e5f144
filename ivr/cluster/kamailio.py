"""Kamailio in front of the Asterisk nodes: its config from the ``[cluster]`` settings, and
its RPC (drain, undrain, each node's state as the dispatcher sees it).

``render(settings)`` is pure (settings in, file texts out: ``kamailio.cfg`` and
``dispatcher.list`` from the templates in ``kamailio-config/``); ``write(settings)`` puts
them into ``[cluster] kamailio_dir`` (default ``DATA_DIR/kamailio``). Kamailio's JSON-RPC
is reached over the unix datagram socket the config makes there (``kamailio_rpc.sock``);
``kamcmd -s unix:DIR/kamailio_ctl`` works too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ivr.config import ClusterSettings, ConfigError, Settings

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "kamailio-config"
FILES = ("kamailio.cfg", "dispatcher.list")
DISPATCH_SET = 1  # the one dispatcher set: all nodes
ALGORITHMS = {"call-load": 10, "round-robin": 4, "hash-call-id": 0}
# The dispatcher's state letters: active, inactive, trying, disabled (by the operator).
STATES = {"A": "active", "I": "inactive", "T": "trying", "D": "disabled"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,62}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes; leave room for the reply sockets' names


class KamailioError(RuntimeError):
    """Kamailio could not be reached over its RPC socket, or refused a command."""


@dataclass(frozen=True)
class Node:
    name: str  # the node's [telephony] node_name (its row in cluster_nodes)
    host: str
    port: int

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.port}"


def parse_node(text: str, where: str) -> Node:
    """``NAME=HOST:PORT`` -> Node, or ConfigError naming ``where``."""
    name, sep, address = text.strip().partition("=")
    host, colon, port_text = address.rpartition(":")
    if not sep or not colon:
        raise ConfigError(f"{where}: expected NAME=HOST:PORT (e.g. a=127.0.0.1:5070), got {text!r}")
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: node name {name!r}: 1-63 letters, digits, '.', '_', ':' or '-' "
            "(it is the node's [telephony] node_name)"
        )
    if not _is_ip(host) and not _HOST.fullmatch(host):
        raise ConfigError(f"{where}: {host!r} is not an IP address or host name")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(f"{where}: {port_text!r} is not a port number (1-65535)")
    return Node(name, host, int(port_text))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_nodes(cluster: ClusterSettings) -> list[Node]:
    nodes = [parse_node(t, f"cluster.nodes.{i}") for i, t in enumerate(cluster.nodes)]
    names: set[str] = set()
    addresses: set[tuple[str, int]] = set()
    for i, node in enumerate(nodes):
        if node.name in names:
            raise ConfigError(f"cluster.nodes.{i}: the node name {node.name!r} is used twice")
        if (node.host, node.port) in addresses:
            raise ConfigError(f"cluster.nodes.{i}: {node.host}:{node.port} is listed twice")
        if (node.host, node.port) == (cluster.kamailio_address, cluster.kamailio_port):
            raise ConfigError(
                f"cluster.nodes.{i}: {node.host}:{node.port} is Kamailio's own address "
                "(cluster.kamailio_address:kamailio_port); give the node another port"
            )
        names.add(node.name)
        addresses.add((node.host, node.port))
    return nodes


def check_cluster_settings(cluster: ClusterSettings) -> None:
    """ConfigError naming the first [cluster] Kamailio setting that is wrong."""
    parse_nodes(cluster)
    try:
        address = ipaddress.ip_address(cluster.kamailio_address)
    except ValueError:
        raise ConfigError(
            f"cluster.kamailio_address: {cluster.kamailio_address!r} is not an IP address "
            "(e.g. 127.0.0.1)"
        ) from None
    if address.is_unspecified:
        raise ConfigError(
            "cluster.kamailio_address: give the one address Kamailio listens on, not "
            f"{cluster.kamailio_address} (every interface)"
        )
    if not 1 <= cluster.kamailio_port <= 65535:
        raise ConfigError(f"cluster.kamailio_port: {cluster.kamailio_port} is not a port number")
    if any(c in cluster.kamailio_dir for c in '"\n\r\t'):
        raise ConfigError('cluster.kamailio_dir: must not contain a quote (") or a newline')
    bounds = {
        "probe_interval_seconds": (1, 3600),
        "probe_failure_threshold": (1, 100),
        "probe_recovery_threshold": (1, 100),
    }
    for name, (low, high) in bounds.items():
        value = getattr(cluster, name)
        if not low <= value <= high:
            raise ConfigError(f"cluster.{name}: {value} is not between {low} and {high}")
    if not 0.2 <= cluster.sip_timeout_seconds <= 60:
        raise ConfigError(
            f"cluster.sip_timeout_seconds: {cluster.sip_timeout_seconds} is not between 0.2 and 60"
        )
    if cluster.routing_algorithm not in ALGORITHMS:
        raise ConfigError(
            f"cluster.routing_algorithm: {cluster.routing_algorithm!r} is not one of "
            + ", ".join(ALGORITHMS)
        )


@dataclass(frozen=True)
class KamailioPaths:
    directory: Path

    @property
    def cfg(self) -> Path:
        return self.directory / "kamailio.cfg"

    @property
    def dispatcher_list(self) -> Path:
        return self.directory / "dispatcher.list"

    @property
    def pid_file(self) -> Path:
        return self.directory / "kamailio.pid"

    @property
    def rpc_socket(self) -> Path:
        return self.directory / "kamailio_rpc.sock"

    @property
    def ctl_socket(self) -> Path:
        return self.directory / "kamailio_ctl"


def paths(settings: Settings) -> KamailioPaths:
    configured = settings.cluster.kamailio_dir
    directory = Path(configured) if configured else settings.data_dir / "kamailio"
    directory = directory.absolute()
    if len(str(directory / "kamailio_rpc.sock")) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"cluster.kamailio_dir: {directory} is too long for a unix socket path "
            f"(at most {MAX_SOCKET_PATH - 18} characters); choose a shorter folder"
        )
    return KamailioPaths(directory)


def balancer_match(settings: Settings) -> str:
    """``IP:PORT`` from which Kamailio's requests reach the nodes (Asterisk identifies the
    ``balancer`` endpoint by it), or "" when no nodes are configured (no Kamailio)."""
    cluster = settings.cluster
    if not cluster.nodes:
        return ""
    return f"{cluster.kamailio_address}:{cluster.kamailio_port}"


def system_name(settings: Settings) -> str:
    """Asterisk's ``systemname`` for this node: its [telephony] node_name (default
    HOST-SIP_PORT) in letters, digits, '_' and '-'. Asterisk prefixes each channel's unique
    id with it, so two nodes on one database never store the same inbound channel id."""
    name = settings.telephony.node_name or f"{socket.gethostname()}-{settings.pbx.sip_port}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:40]


def render(
    settings: Settings, templates: Path | None = None, draining: frozenset[str] = frozenset()
) -> dict[str, str]:
    """The text of kamailio.cfg and dispatcher.list for these settings (pure). Nodes named in
    ``draining`` (the database's flag) start disabled, so a restarted Kamailio keeps a drain."""
    cluster = settings.cluster
    check_cluster_settings(cluster)
    nodes = parse_nodes(cluster)
    if not nodes:
        raise ConfigError(
            "cluster.nodes: no nodes to balance over; list them as NAME=HOST:PORT "
            '(nodes = ["a=127.0.0.1:5070", "b=127.0.0.1:5080"] or IVR_CLUSTER_NODES)'
        )
    where = paths(settings)
    alg = ALGORITHMS[cluster.routing_algorithm]
    context: dict[str, Any] = {
        "nodes": nodes,
        "draining": draining,
        "address": cluster.kamailio_address,
        "port": cluster.kamailio_port,
        "directory": str(where.directory),
        "cfg_file": str(where.cfg),
        "list_file": str(where.dispatcher_list),
        "pid_file": str(where.pid_file),
        "rpc_socket": str(where.rpc_socket),
        "ctl_socket": str(where.ctl_socket),
        "probe_interval": cluster.probe_interval_seconds,
        "probe_failures": cluster.probe_failure_threshold,
        "probe_recoveries": cluster.probe_recovery_threshold,
        "sip_timeout_ms": round(cluster.sip_timeout_seconds * 1000),
        "algorithm": cluster.routing_algorithm,
        "alg": alg,
        "call_load": alg == ALGORITHMS["call-load"],
        # A call's load entry outlives the longest call the telephony worker allows.
        "hash_expire": int(settings.telephony.max_call_seconds) + 120,
        "children": 4,
    }
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates or TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    return {name: env.get_template(name).render(**context) for name in FILES}


def write(settings: Settings, draining: frozenset[str] = frozenset()) -> list[Path]:
    """Render and write the files (atomically); their paths."""
    files = render(settings, draining=draining)
    where = paths(settings)
    where.directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        target = where.directory / name
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
        written.append(target)
    return written


def binary() -> str:
    """The kamailio program (Debian: /usr/sbin/kamailio)."""
    found = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise KamailioError("kamailio is not installed (Debian: apt-get install kamailio)")
    return found


def check_config(cfg: Path) -> str:
    """``kamailio -c -f CFG``: its output; KamailioError with it when Kamailio refuses."""
    result = subprocess.run(
        [binary(), "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=60, check=False
    )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise KamailioError(f"kamailio -c refused {cfg}:\n{output[-3000:]}")
    return output


def run_argv(settings: Settings) -> list[str]:
    """Kamailio in the foreground, logging to stderr, on the rendered config."""
    where = paths(settings)
    return [binary(), "-DD", "-E", "-f", str(where.cfg), "-P", str(where.pid_file)]


# ---------------------------------------------------------------------------- RPC


def rpc(socket_path: Path, method: str, params: list[Any], timeout: float = 5.0) -> Any:
    """One JSON-RPC call over Kamailio's unix datagram socket (module jsonrpcs); its result."""
    request = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    reply_path = socket_path.parent / f".rpc-{os.getpid()}-{secrets.token_hex(4)}.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(str(reply_path))
            os.chmod(reply_path, 0o666)  # Kamailio may run as another user
            sock.settimeout(timeout)
            sock.sendto(json.dumps(request).encode(), str(socket_path))
            data = sock.recv(1 << 20)
        except FileNotFoundError:
            raise KamailioError(
                f"Kamailio's RPC socket {socket_path} does not exist: is Kamailio running "
                "with the rendered config?"
            ) from None
        except (ConnectionRefusedError, TimeoutError, OSError) as exc:
            raise KamailioError(f"Kamailio did not answer on {socket_path}: {exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                reply_path.unlink()
    reply = json.loads(data)
    if "error" in reply:
        raise KamailioError(f"Kamailio refused {method}: {reply['error']}")
    return reply.get("result")


def find_node(settings: Settings, name: str) -> Node:
    nodes = parse_nodes(settings.cluster)
    for node in nodes:
        if node.name == name:
            return node
    listed = ", ".join(n.name for n in nodes) or "none (cluster.nodes is empty)"
    raise ConfigError(f"node {name!r}: not in cluster.nodes (known: {listed})")


def set_node_state(settings: Settings, name: str, state: str) -> None:
    """``dispatcher.set_state`` for one node: "d" disabled (drained), "ap" active + probed."""
    node = find_node(settings, name)
    rpc(paths(settings).rpc_socket, "dispatcher.set_state", [state, DISPATCH_SET, node.uri])


def node_states(settings: Settings) -> dict[str, str]:
    """Each node's state in Kamailio's dispatcher: active, trying, inactive or disabled."""
    result = rpc(paths(settings).rpc_socket, "dispatcher.list", [])
    by_uri = {n.uri: n.name for n in parse_nodes(settings.cluster)}
    states: dict[str, str] = {}
    for record in (result or {}).get("RECORDS", []):
        for target in record.get("SET", {}).get("TARGETS", []):
            dest = target.get("DEST", {})
            uri, flags = str(dest.get("URI", "")), str(dest.get("FLAGS", "?"))
            states[by_uri.get(uri, uri)] = STATES.get(flags[:1], flags)
    return states

"""The Compose deployment for real: docker/compose.yaml on a private Docker daemon.

The test starts its own ``dockerd`` (no bridge, no iptables, its own data root in a cache
outside the repository so that layers persist: tests/support/dockerd.py), builds Debian
base images locally (debootstrap + ``docker import``, once), builds the project's images
from the Dockerfiles users use through the compose file users use (loopback ports chosen
here), waits until every service is healthy, calls the stock inbound line 102 (the housing
line: a language menu, then a topic menu) with a real softphone (baresip) registered as
softphone1, answers both menus with DTMF and finds the answers in the composed PostgreSQL,
opens the staff UI's login page, then ``docker-compose down -v`` and stops the daemon:
no container, no daemon process, no mount and no network interface is left behind.

The first run builds everything (minutes: PyPI and Debian downloads); later runs reuse the
cached layers. The figures are printed (``-s``) and in the README's deployment section.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from ivr.softphone import SoftphoneAccount
from ivr.telephony.simscript import BARGE_IN
from tests.support.baresip import Baresip
from tests.support.dockerd import (
    DockerError,
    PrivateDocker,
    mounts_under,
    processes_mentioning,
)
from tests.support.ports import free_port, free_range

pytestmark = [pytest.mark.pbx, pytest.mark.docker, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker" / "compose.yaml"
BASES = {
    "bookworm": "ivr-local/debian:bookworm-slim",
    "sid": "ivr-local/debian:sid-slim",
}
SERVICES = ("postgres", "redis", "asterisk", "telephony", "worker", "web")
LINE = "102"  # examples/flows/housing-line.yaml: language menu, then a topic menu
HEALTH_TIMEOUT = 300.0


def _compose_cmd() -> list[str]:
    return shlex.split(os.environ.get("IVR_TEST_COMPOSE", "docker-compose"))


def _extra_ca_certs() -> str:
    """The host's own extra CAs (a TLS-intercepting proxy in front of PyPI), for the build."""
    folder = Path("/usr/local/share/ca-certificates")
    pems = [p.read_text() for p in sorted(folder.glob("**/*.crt"))] if folder.is_dir() else []
    return "\n".join(pem.strip() for pem in pems if "BEGIN CERTIFICATE" in pem)


class Stack:
    """The composed project on the private daemon: compose commands, containers, logs."""

    def __init__(self, docker: PrivateDocker, project: str, env: dict[str, str]) -> None:
        self.docker = docker
        self.project = project
        self.env = {**docker.env, **env}
        self.timings: dict[str, float] = {}

    def compose(self, *args: str, timeout: float = 1800, check: bool = True) -> str:
        argv = [*_compose_cmd(), "-f", str(COMPOSE_FILE), "-p", self.project, *args]
        started = time.monotonic()
        proc = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, cwd=REPO
        )
        self.timings[args[0]] = self.timings.get(args[0], 0.0) + time.monotonic() - started
        if check and proc.returncode != 0:
            raise DockerError(
                f"{shlex.join(argv)} failed (status {proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr)[-6000:]}\n--- logs ---\n{self.logs()}"
            )
        return proc.stdout + proc.stderr

    def containers(self) -> dict[str, dict[str, object]]:
        """service name -> ``docker inspect`` of its container (this project's only)."""
        ids = self.docker.cli(
            "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"
        ).split()
        if not ids:
            return {}
        found = json.loads(self.docker.cli("inspect", *ids))
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in found}

    def container(self, service: str) -> str:
        info = self.containers().get(service)
        if info is None:
            raise AssertionError(f"no container for the service {service}:\n{self.logs()}")
        return str(info["Id"])

    def exec(self, service: str, *argv: str) -> str:
        return self.docker.cli("exec", self.container(service), *argv)

    def logs(self, tail: int = 60) -> str:
        try:
            argv = [*_compose_cmd(), "-f", str(COMPOSE_FILE), "-p", self.project]
            proc = subprocess.run(
                [*argv, "logs", "--no-color", "--tail", str(tail)],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
                cwd=REPO,
            )
            out = proc.stdout + proc.stderr
        except Exception as exc:  # noqa: BLE001 - logs are a diagnostic only
            out = f"(no compose logs: {exc})"
        health = []
        try:
            for name, info in self.containers().items():
                state = info["State"]
                assert isinstance(state, dict)
                checks = state.get("Health", {}).get("Log", [])[-2:]
                outputs = [str(c.get("Output", "")).strip()[-300:] for c in checks]
                health.append(f"{name}: {state.get('Status')} {outputs}")
        except Exception as exc:  # noqa: BLE001
            health.append(f"(no inspect: {exc})")
        return out[-12000:] + "\n--- health ---\n" + "\n".join(health)

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT) -> None:
        """Every long-running service healthy and ``init`` exited 0, within ``timeout``."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            found = self.containers()
            states = {}
            for name, info in found.items():
                state = info["State"]
                assert isinstance(state, dict)
                health = state.get("Health", {}).get("Status", "")
                states[name] = f"{state['Status']}/{health or state.get('ExitCode')}"
                if name == "init" and state["Status"] == "exited" and state["ExitCode"] != 0:
                    raise AssertionError(f"the init service failed:\n{self.logs()}")
            init_done = states.get("init") == "exited/0"
            if init_done and all(states.get(s) == "running/healthy" for s in SERVICES):
                return
            time.sleep(1.0)
        raise AssertionError(
            f"the stack was not healthy within {timeout:.0f} s: {states}\n{self.logs()}"
        )


@contextmanager
def private_docker() -> Iterator[PrivateDocker]:
    docker = PrivateDocker()
    try:
        docker.start()
        yield docker
    finally:
        docker.stop()


def _ports() -> dict[str, str]:
    rtp = free_range(200, start=41000)
    chosen: list[int] = []
    while len(chosen) < 6:
        port = free_port()
        if not rtp <= port < rtp + 200 and port not in chosen:
            chosen.append(port)
    sip, ami, ari, web, pg, redis = chosen
    return {
        "IVRC_SIP_PORT": str(sip),
        "IVRC_AMI_PORT": str(ami),
        "IVRC_ARI_PORT": str(ari),
        "IVRC_RTP_START": str(rtp),
        "IVRC_RTP_END": str(rtp + 199),
        "IVRC_WEB_PORT": str(web),
        "IVRC_PG_PORT": str(pg),
        "IVRC_REDIS_PORT": str(redis),
    }


def _wait_sql(url: str, sql: str, ok: object, what: str, timeout: float = 30) -> object:
    """Poll ``sql`` (one value) on the composed PostgreSQL until ``ok(value)`` holds."""
    deadline = time.monotonic() + timeout
    value: object = None
    while time.monotonic() < deadline:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(sql).fetchone()
        value = row[0] if row else None
        if callable(ok) and ok(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: still {value!r} after {timeout:.0f} s")


def test_compose_stack_answers_a_real_call_and_leaves_nothing_behind() -> None:
    project = f"ivrtest{os.getpid()}"
    ports = _ports()
    env = {
        **ports,
        "IVRC_BIND_ADDRESS": "127.0.0.1",
        "IVRC_WEB_BIND_ADDRESS": "127.0.0.1",
        "IVRC_PG_LISTEN": "127.0.0.1",
        "IVRC_REDIS_BIND": "127.0.0.1",
        "IVRC_BASE_IMAGE": BASES["bookworm"],
        "IVRC_ASTERISK_BASE_IMAGE": BASES["sid"],
        "IVRC_TAG": "test",
        "IVRC_EXTRA_CA_CERTS": _extra_ca_certs(),
    }
    links_before = set(_links())
    timings: dict[str, float] = {}
    roots: tuple[Path, Path] | None = None
    with private_docker() as docker:
        roots = (docker.data_root, docker.tmp)
        for suite, name in BASES.items():
            started = time.monotonic()
            if docker.ensure_debian_base(suite, name):
                timings[f"base image {suite} (debootstrap + import)"] = time.monotonic() - started
        stack = Stack(docker, project, env)
        try:
            stack.compose("build")
            docker.cli("image", "prune", "-f")  # images an earlier build's tags left
            started = time.monotonic()
            stack.compose("up", "-d")
            stack.wait_healthy()
            timings["up until every service is healthy"] = time.monotonic() - started
            _deployment_rules(stack, ports)
            _call_and_check(stack, ports)
            _login_page(ports)
            _no_secret_in_logs(stack)
        finally:
            stack.compose("down", "-v", "--remove-orphans", "--timeout", "20", check=False)
            left = docker.containers()
            volumes = docker.cli("volume", "ls", "-q").split()
        timings.update({f"compose {k}": v for k, v in stack.timings.items()})
        assert left == [], f"containers left after down: {left}"
        assert not [v for v in volumes if v.startswith(project)], volumes
        networks = docker.cli("network", "ls", "--format", "{{.Name}}").split()
        assert sorted(networks) == ["host", "none"], networks  # never a bridge network
    notes = docker.cleanup_notes
    print("\ncompose test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    assert notes == [], f"the daemon's stop had to clean up: {notes}"
    assert roots is not None
    leftovers = processes_mentioning(*(str(r) for r in roots))
    assert leftovers == {}, f"processes left behind: {leftovers}"
    assert mounts_under(*roots) == [], "mounts left behind"
    new_links = set(_links()) - links_before
    assert not [n for n in new_links if n.startswith(("docker", "veth", "br-"))], new_links


def _links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    return [line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()]


def _call_and_check(stack: Stack, ports: dict[str, str]) -> None:
    """softphone1 dials the housing line, answers its two menus; PostgreSQL has them."""
    secrets = tomllib.loads(stack.exec("telephony", "cat", "/data/secrets.toml"))
    password = stack.exec("postgres", "cat", "/secrets/postgres_password").strip()
    assert len(password) == 48, "the generated PostgreSQL password"
    url = f"postgresql://ivr:{password}@127.0.0.1:{ports['IVRC_PG_PORT']}/ivr"
    account = SoftphoneAccount(
        "softphone1", secrets["softphones"]["softphone1"], "127.0.0.1", int(ports["IVRC_SIP_PORT"])
    )
    with psycopg.connect(url) as conn:
        before = conn.execute("SELECT count(*) FROM calls").fetchone()
    assert before == (0,), before
    last_node = "SELECT last_node_id FROM calls ORDER BY started_at DESC LIMIT 1"
    with Baresip(account.baresip_line(), lifetime=120) as phone:
        try:
            phone.wait_registered(15)
            phone.dial(LINE)
            phone.wait_event("CALL_ESTABLISHED", 20)
            _wait_sql(url, last_node, lambda v: v == "lang", "the call's node")
            phone.send_digits("1", gap=BARGE_IN)  # suomeksi
            _wait_sql(url, last_node, lambda v: v == "menu", "the call's node")
            phone.send_digits("2", gap=BARGE_IN)  # asunnon etsiminen
            _wait_sql(url, last_node, lambda v: v not in ("lang", "menu"), "the call's node")
            phone.hangup()
            phone.wait_event("CALL_CLOSED", 15)
        except Exception as exc:
            raise AssertionError(f"the call failed: {exc}\n{stack.logs()}") from exc
    status = _wait_sql(
        url,
        "SELECT status FROM calls ORDER BY started_at DESC LIMIT 1",
        lambda v: v not in (None, "active"),
        "the call's status",
    )
    with psycopg.connect(url) as conn:
        call = conn.execute(
            "SELECT id, direction, line_number, flow_id, language, remote_number FROM calls"
        ).fetchall()
        assert len(call) == 1, call
        call_id, direction, line, flow_id, language, remote = call[0]
        answers = conn.execute(
            "SELECT node_id, value FROM answers WHERE call_id = %s ORDER BY seq", (call_id,)
        ).fetchall()
    assert (direction, line, flow_id, language) == ("inbound", LINE, "housing-line", "fi")
    assert remote is None, "the housing line is anonymous: no caller number is stored"
    assert answers == [("lang", "fi"), ("menu", "finding_home")], (answers, status)


def _login_page(ports: dict[str, str]) -> None:
    page = httpx.get(f"http://127.0.0.1:{ports['IVRC_WEB_PORT']}/login", timeout=10)
    assert page.status_code == 200, page.status_code
    assert 'type="password"' in page.text, page.text[:500]


def _deployment_rules(stack: Stack, ports: dict[str, str]) -> None:
    """Host networking and a restart policy everywhere; every port on loopback only."""
    for name, info in stack.containers().items():
        host = info["HostConfig"]
        assert isinstance(host, dict)
        assert host["NetworkMode"] == "host", (name, host["NetworkMode"])
        expected = "no" if name == "init" else "unless-stopped"
        assert host["RestartPolicy"]["Name"] == expected, (name, host["RestartPolicy"])
    tcp = ("IVRC_AMI_PORT", "IVRC_ARI_PORT", "IVRC_WEB_PORT", "IVRC_PG_PORT", "IVRC_REDIS_PORT")
    for key in (*tcp, "IVRC_SIP_PORT"):
        flags = "-ltn" if key in tcp else "-lun"
        out = subprocess.run(
            ["ss", "-H", flags, f"sport = :{ports[key]}"], capture_output=True, text=True
        ).stdout
        addresses = {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line}
        assert addresses == {"127.0.0.1"}, f"{key} {ports[key]}: listening on {addresses}"


def _no_secret_in_logs(stack: Stack) -> None:
    """No generated secret appears in any service's log."""
    secrets = tomllib.loads(stack.exec("telephony", "cat", "/data/secrets.toml"))
    values = [v for v in secrets["core"].values() if len(v) >= 16]
    values += list(secrets["softphones"].values())
    for name in ("postgres_password", "redis_password"):
        values.append(stack.exec("postgres", "cat", f"/secrets/{name}").strip())
    logs = stack.compose("logs", "--no-color")
    leaked = [f"{v[:4]}…" for v in values if v in logs]
    assert not leaked, f"secrets in the services' logs: {leaked}"

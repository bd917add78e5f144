"""The `ivr` command as a user runs it: init, pbx start/status/stop, errors."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run_ivr
from tests.support.instance import instance_env

ivr = run_ivr


@pytest.fixture()
def env() -> Iterator[dict[str, str]]:
    data_dir = Path(tempfile.mkdtemp(prefix="ivr-cli-"))
    environment = instance_env(data_dir)
    yield environment
    ivr(environment, "pbx", "stop")
    shutil.rmtree(data_dir, ignore_errors=True)


def _processes_using(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(path).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _mounts_under(path: Path) -> list[str]:
    return [
        line for line in Path("/proc/self/mounts").read_text().splitlines() if str(path) in line
    ]


def test_init_is_idempotent(env: dict[str, str]) -> None:
    first = ivr(env, "init")
    assert first.returncode == 0, first.stderr
    assert "generated secrets" in first.stdout
    secrets = (Path(env["IVR_DATA_DIR"]) / "secrets.toml").read_text()
    second = ivr(env, "init")
    assert second.returncode == 0
    assert "generated" not in second.stdout and "wrote" not in second.stdout
    assert (Path(env["IVR_DATA_DIR"]) / "secrets.toml").read_text() == secrets


@pytest.mark.pbx
def test_pbx_lifecycle_leaves_nothing_behind(env: dict[str, str]) -> None:
    data_dir = Path(env["IVR_DATA_DIR"])
    assert ivr(env, "init").returncode == 0
    build = ivr(env, "pbx", "build", timeout=600)
    assert build.returncode == 0, build.stderr
    start = ivr(env, "pbx", "start")
    assert start.returncode == 0, start.stderr + start.stdout
    assert "is running" in start.stdout
    again = ivr(env, "pbx", "start")
    assert again.returncode == 0 and "already" in again.stdout
    status = ivr(env, "pbx", "status")
    assert status.returncode == 0, status.stdout
    for line in ("sip: ok", "ami: ok", "ari: ok"):
        assert line in status.stdout
    version = ivr(env, "pbx", "cli", "core show version")
    assert version.returncode == 0 and "Asterisk 22" in version.stdout
    assert _processes_using(data_dir)
    stop = ivr(env, "pbx", "stop")
    assert stop.returncode == 0 and "stopped" in stop.stdout
    assert ivr(env, "pbx", "stop").stdout.strip() == "Asterisk was not running"
    down = ivr(env, "pbx", "status")
    assert down.returncode == 3 and "not running" in down.stdout
    assert _processes_using(data_dir) == []
    assert _mounts_under(data_dir) == []


def test_port_in_use_is_named(env: dict[str, str]) -> None:
    assert ivr(env, "init").returncode == 0
    port = int(env["IVR_PBX_ARI_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = ivr(env, "pbx", "start")
    assert result.returncode == 2
    assert f"port {port}/tcp" in result.stderr and "pbx.ari_port" in result.stderr
    assert _processes_using(Path(env["IVR_DATA_DIR"])) == []


def test_bad_setting_is_a_clear_error(env: dict[str, str]) -> None:
    result = ivr({**env, "IVR_PBX_SIP_PORT": "nope"}, "init")
    assert result.returncode == 2
    assert "IVR_PBX_SIP_PORT" in result.stderr and "Traceback" not in result.stderr


def test_commands_before_init_say_so(env: dict[str, str]) -> None:
    result = ivr(env, "pbx", "start")
    assert result.returncode == 2
    assert "ivr init" in result.stderr


def test_softphone_prints_accounts(env: dict[str, str]) -> None:
    assert ivr(env, "init").returncode == 0
    out = ivr(env, "softphone").stdout
    secrets = (Path(env["IVR_DATA_DIR"]) / "secrets.toml").read_text()
    assert f"<sip:softphone1@127.0.0.1:{env['IVR_PBX_SIP_PORT']};transport=udp>" in out
    password = next(
        line.split('"')[1] for line in secrets.splitlines() if line.startswith("softphone1 =")
    )
    assert f"auth_pass={password}" in out
    assert "Numbers to dial (inbound lines): 100, 101, 102" in out

"""Linphone (Debian's ``linphone-cli``, linphonec 5.1) registers with the linphonerc that
``ivr softphone --format linphone`` prints, and ``ivr pbx status`` lists it. Real Asterisk,
real linphonec, loopback only (the printed snippet binds the phone to 127.0.0.1)."""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.bootstrap import App
from ivr.telephony.ami import ContactState
from tests.support.cli import run_ivr
from tests.support.instance import destroy, make_instance, start_or_fail
from tests.support.tools import tool

pytestmark = pytest.mark.pbx

ACCOUNT = "softphone2"


@pytest.fixture()
def instance() -> Iterator[tuple[App, dict[str, str]]]:
    app, env = make_instance("ivr-linphone-")
    start_or_fail(app)
    yield app, env
    destroy(app)


def _linphonerc(printed: str, name: str) -> str:
    """The snippet printed for ``name``: from its ``[sip]`` to the next account's note."""
    block = printed.split(f"# Linphone ({name}):", 1)[1].split("# Linphone (", 1)[0]
    return block[block.index("[sip]") :]


async def _registered(app: App) -> list[ContactState]:
    ami = await app.ami()
    try:
        return await ami.registered_contacts()
    finally:
        ami.close()


def test_linphonec_registers_with_the_printed_linphonerc(
    instance: tuple[App, dict[str, str]], tmp_path: Path
) -> None:
    app, env = instance
    pbx_port = app.settings.pbx.sip_port
    printed = run_ivr(env, "softphone", "--format", "linphone")
    assert printed.returncode == 0, printed.stderr
    rc_text = _linphonerc(printed.stdout, ACCOUNT)
    rc = configparser.ConfigParser(interpolation=None)
    rc.read_string(rc_text)
    assert rc["sip"]["sip_port"] != str(pbx_port)  # never the PBX's port
    assert rc["sip"]["sip_tcp_port"] == "0"  # no silent fall-back to TCP
    assert rc["proxy_0"]["reg_proxy"] == f"<sip:127.0.0.1:{pbx_port};transport=udp>"

    before = run_ivr(env, "pbx", "status")
    assert "softphones registered: none" in before.stdout, before.stdout

    config = tmp_path / "linphonerc"
    config.write_text(rc_text)
    home = tmp_path / "home"
    (home / ".local" / "share" / "linphone").mkdir(parents=True)  # linphonec needs it
    environ = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    log = tmp_path / "linphonec.log"
    with log.open("wb") as out:
        phone = subprocess.Popen(
            [tool("linphonec"), "-c", str(config)],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environ,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            mine = [c for c in asyncio.run(_registered(app)) if c.endpoint == ACCOUNT]
            if mine:
                break
            assert phone.poll() is None, f"linphonec exited: {log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, (
                f"linphonec did not register {ACCOUNT}: {log.read_text(errors='replace')[-2000:]}"
            )
            time.sleep(0.2)
        (contact,) = mine
        assert contact.user_agent.startswith("Linphonec/")
        assert contact.uri.startswith(f"sip:{ACCOUNT}@127.0.0.1:")
        assert "transport=tcp" not in contact.uri.lower()
        assert not contact.uri.endswith(f":{pbx_port}")  # its own port, not the PBX's

        status = run_ivr(env, "pbx", "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "softphones registered: 1" in status.stdout
        assert f"  {ACCOUNT} at {contact.uri} ({contact.user_agent})" in status.stdout
        phones = json.loads(run_ivr(env, "pbx", "status", "--json").stdout)["softphones"]
        assert phones == [
            {"endpoint": ACCOUNT, "uri": contact.uri, "user_agent": contact.user_agent}
        ]
    finally:
        if phone.poll() is None:
            assert phone.stdin is not None
            phone.stdin.write(b"quit\n")
            phone.stdin.flush()
            try:
                phone.wait(10)
            except subprocess.TimeoutExpired:
                phone.kill()
                phone.wait()

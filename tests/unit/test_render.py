from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ivr.config import ConfigError, PbxSettings
from ivr.credentials import Credentials
from ivr.pbx.render import PbxDirs, render_all

CREDS = Credentials(
    "ami-u",
    "ami-secret",
    "ari-u",
    "ari-secret",
    "web",
    {"softphone1": "pw1", "softphone2": "pw2", "softphone3": "pw3"},
)
DIRS = PbxDirs(
    *(Path(f"/d/{n}") for n in ("etc", "mod", "lib", "data", "spool", "run", "log", "sbin", "sim"))
)


def test_loopback_render_uses_ports_secrets_and_simulated_residents() -> None:
    pbx = PbxSettings(sip_port=15060, ami_port=15038, ari_port=15088)
    files = render_all(pbx, CREDS, DIRS, inbound_numbers=("100", "+35829123"))
    assert {
        "asterisk.conf",
        "pjsip.conf",
        "extensions.conf",
        "ari.conf",
        "manager.conf",
        "http.conf",
        "rtp.conf",
        "modules.conf",
    } <= set(files)
    for name, text in files.items():
        assert "{{" not in text and "{%" not in text, name
    assert "bind = 127.0.0.1:15060" in files["pjsip.conf"]
    assert "bindport = 15088" in files["http.conf"]
    assert "bindaddr = 127.0.0.1" in files["http.conf"]
    assert "port = 15038" in files["manager.conf"]
    assert "permit = 127.0.0.1/255.255.255.255" in files["manager.conf"]
    assert "[ari-u]" in files["ari.conf"] and "password = ari-secret" in files["ari.conf"]
    assert "secret = ami-secret" in files["manager.conf"]
    pjsip = files["pjsip.conf"]
    assert pjsip.count("type = auth") == 3  # the softphones
    assert "password = pw2" in pjsip
    assert "from_user = resident" in pjsip and "[resident](endpoint-common)" in pjsip
    assert "[simulated-residents]" in files["extensions.conf"]
    assert "Stasis(ivr,inbound,100)" in files["extensions.conf"]
    assert "exten => +35829123,1," in files["extensions.conf"]
    assert "exten => +35829123,1," in files["extensions.conf"]
    assert "astspooldir => /d/spool" in files["asterisk.conf"]
    assert "noload => chan_iax2.so" in files["modules.conf"]


def test_provider_trunk_replaces_the_loopback() -> None:
    pbx = dataclasses.replace(
        PbxSettings(),
        trunk_host="sip.example.net",
        trunk_username="muni",
        trunk_password="prov-secret",
        trunk_register=True,
        softphones=1,
    )
    files = render_all(pbx, CREDS, DIRS)
    pjsip = files["pjsip.conf"]
    assert "contact = sip:sip.example.net:5060;transport=udp" in pjsip
    assert "password = prov-secret" in pjsip
    assert "type = registration" in pjsip
    assert "[resident]" not in pjsip
    assert "simulated-residents" not in files["extensions.conf"]
    assert pjsip.count("type = auth") == 2  # one softphone + the trunk


def test_trunk_qualify_follows_the_setting() -> None:
    provider = dataclasses.replace(PbxSettings(), trunk_host="sip.example.net", softphones=0)
    off = render_all(provider, CREDS, DIRS)["pjsip.conf"]
    trunk_aor = off.split("[trunk]\ntype = aor\n", 1)[1].split("\n\n", 1)[0]
    assert "qualify_frequency = 0" in trunk_aor  # the default: no OPTIONS to the far end
    on = render_all(dataclasses.replace(provider, trunk_qualify_seconds=60), CREDS, DIRS)
    trunk_aor = on["pjsip.conf"].split("[trunk]\ntype = aor\n", 1)[1].split("\n\n", 1)[0]
    assert "qualify_frequency = 60" in trunk_aor


# Every value written into the config files is checked at render time too (settings built
# without load_settings, a hand-edited secrets.toml, folder names).
INJECTIONS = ("\n", "\r", ";", "[", "]", "\x00", "\x1b")


@pytest.mark.parametrize("bad", INJECTIONS, ids=repr)
@pytest.mark.parametrize(
    "setting",
    ["trunk_host", "trunk_username", "trunk_password", "trunk_from_domain", "bind_address"],
)
def test_render_refuses_settings_that_would_add_config(setting: str, bad: str) -> None:
    values = {"trunk_host": "sip.example.net", setting: f"x{bad}[evil]"}
    pbx = dataclasses.replace(PbxSettings(), **values)
    with pytest.raises(ConfigError, match=rf"^pbx\.{setting}: must not contain a newline"):
        render_all(pbx, CREDS, DIRS)


@pytest.mark.parametrize("bad", INJECTIONS, ids=repr)
@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("ami_username", "secrets.toml core.ami_username"),
        ("ami_password", "secrets.toml core.ami_password"),
        ("ari_username", "secrets.toml core.ari_username"),
        ("ari_password", "secrets.toml core.ari_password"),
        ("softphones", "secrets.toml softphones.softphone2"),
    ],
)
def test_render_refuses_secrets_that_would_add_config(field: str, bad: str, where: str) -> None:
    value = f"pw{bad}x"
    changed: object = {**CREDS.softphones, "softphone2": value} if field == "softphones" else value
    creds = dataclasses.replace(CREDS, **{field: changed})
    with pytest.raises(ConfigError) as err:
        render_all(PbxSettings(), creds, DIRS)
    assert str(err.value).startswith(f"{where}: must not contain a newline")
    assert value not in str(err.value)


@pytest.mark.parametrize("bad", INJECTIONS, ids=repr)
def test_render_refuses_inbound_numbers_and_folders_that_would_add_config(bad: str) -> None:
    with pytest.raises(ConfigError, match="^inbound number '100.*': must not contain"):
        render_all(PbxSettings(), CREDS, DIRS, inbound_numbers=("101", f"100{bad}"))
    dirs = dataclasses.replace(DIRS, log=Path(f"/d/lo{bad}g"))
    with pytest.raises(ConfigError, match="^the Asterisk folder log .*: must not contain"):
        render_all(PbxSettings(), CREDS, dirs)


def test_render_writes_punctuation_in_passwords_verbatim() -> None:
    password = "p@ss#w0rd!$%&/(){}=?'\"<>,.:-_"
    pbx = dataclasses.replace(
        PbxSettings(), trunk_host="sip.example.net", trunk_username="u", trunk_password=password
    )
    creds = dataclasses.replace(CREDS, ari_password=password)
    files = render_all(pbx, creds, DIRS)
    assert f"password = {password}\n" in files["pjsip.conf"]
    assert f"password = {password}\n" in files["ari.conf"]

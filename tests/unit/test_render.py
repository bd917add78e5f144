from __future__ import annotations

import dataclasses
from pathlib import Path

from ivr.config import PbxSettings
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

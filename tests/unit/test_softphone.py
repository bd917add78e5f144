"""`ivr softphone`'s text: a ready linphonerc for Linphone, fields for Zoiper."""

from __future__ import annotations

import configparser
import dataclasses

from ivr.config import PbxSettings, Settings
from ivr.credentials import Credentials
from ivr.softphone import describe

CREDS = Credentials("a", "b", "c", "d", "web", {"softphone1": "pw-1"})


def _settings(**pbx: object) -> Settings:
    return Settings(pbx=dataclasses.replace(PbxSettings(softphones=1), **pbx))


def _linphonerc(text: str) -> configparser.ConfigParser:
    rc = configparser.ConfigParser(interpolation=None)
    rc.read_string(text[text.index("[sip]") :])
    return rc


def test_linphone_format_is_a_linphonerc_not_the_zoiper_fields() -> None:
    settings = _settings(sip_port=5070)
    linphone = describe(settings, CREDS, "linphone")
    zoiper = describe(settings, CREDS, "zoiper")
    assert linphone != zoiper
    assert "username / auth user" in zoiper and "[sip]" not in zoiper
    rc = _linphonerc(linphone)
    assert rc["sip"]["sip_port"] == "-1"  # its own free port, never the PBX's 5070
    assert rc["sip"]["sip_tcp_port"] == "0" and rc["sip"]["sip_tls_port"] == "0"
    assert rc["sip"]["bind_address"] == "127.0.0.1"
    assert rc["proxy_0"]["reg_proxy"] == "<sip:127.0.0.1:5070;transport=udp>"
    assert rc["proxy_0"]["reg_identity"] == '"softphone1" <sip:softphone1@127.0.0.1:5070>'
    assert rc["proxy_0"]["reg_sendregister"] == "1"
    assert dict(rc["auth_info_0"]) == {
        "username": "softphone1",
        "passwd": "pw-1",
        "realm": "asterisk",
        "domain": "127.0.0.1:5070",
    }
    assert "falls back to TCP" in linphone  # says why the port matters


def test_a_pbx_on_all_addresses_does_not_bind_the_phone_to_loopback() -> None:
    rc = _linphonerc(describe(_settings(bind_address="0.0.0.0"), CREDS, "linphone"))
    assert "bind_address" not in rc["sip"]
    assert rc["proxy_0"]["reg_proxy"] == "<sip:YOUR-SERVER-ADDRESS:5060;transport=udp>"

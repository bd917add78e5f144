"""Render the Asterisk configuration templates (asterisk-config/) with ports and secrets."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ivr.config import NOT_RENDERED, ConfigError, PbxSettings, check_config_text
from ivr.credentials import Credentials
from ivr.telephony import personas

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "asterisk-config"


@dataclass(frozen=True)
class PbxDirs:
    etc: Path
    modules: Path
    varlib: Path
    data: Path
    spool: Path
    run: Path
    log: Path
    sbin: Path
    sim_audio: Path

    @property
    def recordings(self) -> Path:
        return self.spool / "recording"


def template_dir() -> Path:
    override = os.environ.get("IVR_TEMPLATE_DIR_OVERRIDE")
    path = Path(override) if override else TEMPLATE_DIR
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path}: the asterisk-config templates are missing (install from a checkout with "
            "`pip install -e .`)"
        )
    return path


def check_rendered_values(
    pbx: PbxSettings, creds: Credentials, dirs: PbxDirs, inbound_numbers: Sequence[str]
) -> None:
    """ConfigError naming the first setting, secret or folder that cannot be written into
    an Asterisk config file (a hand-edited secrets.toml, a folder name with ';'...)."""
    for f in dataclasses.fields(pbx):
        value = getattr(pbx, f.name)
        if isinstance(value, str) and f.name not in NOT_RENDERED:
            check_config_text(f"pbx.{f.name}", value)
    for number in inbound_numbers:
        check_config_text(f"inbound number {number!r}", number)
    for f in dataclasses.fields(creds):
        value = getattr(creds, f.name)
        if isinstance(value, str):
            check_config_text(f"secrets.toml core.{f.name}", value)
    for name, password in creds.softphones.items():
        check_config_text("secrets.toml softphones", name)
        check_config_text(f"secrets.toml softphones.{name}", password)
        if not name.isidentifier():
            raise ConfigError(f"secrets.toml softphones.{name}: not a plain name")
    for f in dataclasses.fields(dirs):
        folder = str(getattr(dirs, f.name))
        check_config_text(f"the Asterisk folder {f.name} ({folder!r})", folder)


def render_all(
    pbx: PbxSettings,
    creds: Credentials,
    dirs: PbxDirs,
    templates: Path | None = None,
    inbound_numbers: Sequence[str] | None = None,
    call_limit_seconds: int = 3660,
    balancer: str = "",
    system_name: str = "",
) -> dict[str, str]:
    """Every config file's name and rendered text.

    Every value that goes into a file is checked first (ConfigError naming it): a newline,
    ';', '[' or ']' in a setting or secret could otherwise add config of its own.
    """
    numbers = list(pbx.inbound_numbers if inbound_numbers is None else inbound_numbers)
    check_rendered_values(pbx, creds, dirs, numbers)
    check_config_text("the Kamailio address (cluster.kamailio_address)", balancer)
    check_config_text("the node name (telephony.node_name)", system_name)
    source = templates or template_dir()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(source)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    loopback = not pbx.trunk_host
    context: dict[str, Any] = {
        "pbx": pbx,
        "inbound_numbers": numbers,
        "call_limit_seconds": call_limit_seconds,
        # "IP:PORT" of the Kamailio in front of this node (ivr.cluster.kamailio); "": none.
        "balancer": balancer,
        # Asterisk's systemname: it prefixes every channel's unique id, so that the nodes
        # of a cluster never store the same inbound channel id in the shared database.
        "system_name": system_name,
        "creds": creds,
        "dirs": dirs,
        "loopback": pbx.bind_address.startswith("127.") or pbx.bind_address == "::1",
        "ami_permit": "127.0.0.1/255.255.255.255"
        if pbx.bind_address.startswith("127.")
        else "0.0.0.0/0.0.0.0",
        "softphones": [
            (f"softphone{i}", creds.softphones[f"softphone{i}"])
            for i in range(1, pbx.softphones + 1)
        ],
        "trunk": {
            "host": pbx.trunk_host,
            "port": pbx.trunk_port,
            "transport": pbx.trunk_transport,
            "username": pbx.trunk_username,
            "password": pbx.trunk_password,
            "register": pbx.trunk_register,
            "from_domain": pbx.trunk_from_domain,
        },
        "simulated_residents": personas.render_dialplan(str(dirs.sim_audio)) if loopback else "",
    }
    rendered: dict[str, str] = {}
    for path in sorted(source.glob("*.conf")):
        try:
            rendered[path.name] = env.get_template(path.name).render(context)
        except jinja2.TemplateError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    return rendered

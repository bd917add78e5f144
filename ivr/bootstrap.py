"""The composition root: the one place that builds adapters and wires them together."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.config import Settings, dump_toml, load_settings
from ivr.credentials import Credentials, ensure_credentials, load_credentials
from ivr.pbx.process import PbxController
from ivr.telephony.ami import AmiClient
from ivr.telephony.ari import AriClient, ari_client


@dataclass(frozen=True)
class App:
    settings: Settings
    credentials: Credentials

    def pbx(self) -> PbxController:
        return PbxController(self.settings, self.credentials)

    def ari(self) -> AriClient:
        return ari_client(self.settings, self.credentials)

    async def ami(self) -> AmiClient:
        pbx = self.settings.pbx
        return await AmiClient.connect(
            pbx.bind_address,
            pbx.ami_port,
            self.credentials.ami_username,
            self.credentials.ami_password,
        )


def load_app(settings: Settings | None = None) -> App:
    """Settings and secrets of an initialised data directory."""
    settings = settings or load_settings()
    return App(settings, load_credentials(settings))


CONFIG_HEADER = """ivr configuration. Precedence: defaults < this file < IVR_* environment
(IVR_<SECTION>_<KEY>, e.g. IVR_PBX_SIP_PORT=5070). Secrets are in secrets.toml.
See README.md for every setting."""


def init(settings: Settings | None = None) -> tuple[App, list[str]]:
    """Create the config file, secrets, folders and database (migrated to head). Idempotent."""
    settings = settings or load_settings()
    done: list[str] = []
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "recordings", "prompts"):
        (settings.data_dir / sub).mkdir(exist_ok=True)
    config = settings.config_file
    if not config.exists():
        pbx = settings.pbx
        config.write_text(
            dump_toml(
                {
                    "pbx": {
                        "bind_address": pbx.bind_address,
                        "sip_port": pbx.sip_port,
                        "ami_port": pbx.ami_port,
                        "ari_port": pbx.ari_port,
                        "rtp_start": pbx.rtp_start,
                        "rtp_end": pbx.rtp_end,
                        "softphones": pbx.softphones,
                        "inbound_numbers": list(pbx.inbound_numbers),
                        "trunk_host": pbx.trunk_host,
                    }
                },
                header=CONFIG_HEADER,
            )
        )
        done.append(f"wrote {config}")
    creds, changed = ensure_credentials(settings)
    if changed:
        done.append(f"generated secrets in {settings.data_dir / 'secrets.toml'}")
    from ivr.store.db import safe_url
    from ivr.store.migrate import upgrade

    db = upgrade(settings.database_url)
    if db.changed:
        where = safe_url(settings.database_url)
        done.append(
            f"created the database {where} (schema {db.after})"
            if db.before is None
            else f"upgraded the database {where} from schema {db.before} to {db.after}"
        )
    return App(settings, creds), done

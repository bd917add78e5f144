"""Ready account settings for integrators' softphones (baresip, Linphone, Zoiper)."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.config import Settings
from ivr.credentials import Credentials, softphone_names


@dataclass(frozen=True)
class SoftphoneAccount:
    username: str
    password: str
    host: str
    port: int

    @property
    def sip_uri(self) -> str:
        return f"sip:{self.username}@{self.host}:{self.port}"

    def baresip_line(self, codecs: str = "PCMA,PCMU", answermode: str = "manual") -> str:
        return (
            f"<sip:{self.username}@{self.host}:{self.port};transport=udp>"
            f";auth_pass={self.password};audio_codecs={codecs};answermode={answermode}"
        )


def accounts(settings: Settings, creds: Credentials) -> list[SoftphoneAccount]:
    host = settings.pbx.bind_address
    if host in ("0.0.0.0", "::"):
        host = "YOUR-SERVER-ADDRESS"
    return [
        SoftphoneAccount(name, creds.softphones[name], host, settings.pbx.sip_port)
        for name in softphone_names(settings)
    ]


def describe(settings: Settings, creds: Credentials, fmt: str = "all") -> str:
    out: list[str] = []
    numbers = ", ".join(settings.inbound_numbers) or "(none configured)"
    for acc in accounts(settings, creds):
        if fmt in ("all", "baresip"):
            out.append(f"# baresip: add this line to ~/.baresip/accounts ({acc.username})")
            out.append(acc.baresip_line())
        if fmt in ("all", "linphone", "zoiper"):
            out.append(f"# Linphone / Zoiper: a SIP account ({acc.username})")
            out.append(f"  username / auth user : {acc.username}")
            out.append(f"  password             : {acc.password}")
            out.append(f"  domain / server      : {acc.host}:{acc.port}")
            out.append("  transport            : UDP")
            out.append("  codecs               : G.711 A-law (PCMA), G.711 u-law (PCMU)")
            out.append("  DTMF                 : RFC 2833 / RFC 4733 (out of band)")
        out.append("")
    out.append(f"Numbers to dial (inbound lines): {numbers}")
    return "\n".join(out)

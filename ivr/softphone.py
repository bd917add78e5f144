"""Ready account settings for integrators' softphones (baresip, Linphone, Zoiper)."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.config import Settings
from ivr.credentials import Credentials, softphone_names

# The digest realm Asterisk's PJSIP challenges with (pjsip.conf sets no default_realm).
ASTERISK_REALM = "asterisk"

LINPHONE_NOTE = """\
# Linphone ({name}): save as a file and start `linphonec -c FILE` (or merge it into
# ~/.linphonerc). sip_port=-1: Linphone picks its own free UDP port. Never give it the PBX's
# port ({port}): on one host the bind fails and Linphone silently falls back to TCP, which
# this PBX does not serve. linphonec also needs ~/.local/share/linphone to exist, or it
# never registers."""


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

    def linphonerc(self) -> str:
        """A linphonerc (linphonec, or Linphone's desktop app) registering this account.

        The phone's own SIP port must not be the PBX's: on one host both default to 5060,
        the phone's UDP bind fails and Linphone silently falls back to TCP, which this PBX
        does not serve. ``sip_port=-1`` lets Linphone pick a free UDP port; TCP and TLS are
        off so that it cannot fall back to them.
        """
        lines = [
            "[sip]",
            "sip_port=-1",
            "sip_tcp_port=0",
            "sip_tls_port=0",
        ]
        if self.host.startswith("127.") or self.host == "::1":
            lines.append(f"bind_address={self.host}")  # the phone on the PBX's own host
        lines += [
            "default_proxy=0",
            "",
            "[proxy_0]",
            f"reg_proxy=<sip:{self.host}:{self.port};transport=udp>",
            f'reg_identity="{self.username}" <sip:{self.username}@{self.host}:{self.port}>',
            "reg_expires=3600",
            "reg_sendregister=1",
            "publish=0",
            "",
            "[auth_info_0]",
            f"username={self.username}",
            f"passwd={self.password}",
            f"realm={ASTERISK_REALM}",
            f"domain={self.host}:{self.port}",
        ]
        return "\n".join(lines)


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
        if fmt == "linphone":
            out.append(LINPHONE_NOTE.format(name=acc.username, port=acc.port))
            out.append(acc.linphonerc())
        if fmt in ("all", "zoiper"):
            out.append(f"# Zoiper (or any SIP softphone): an account ({acc.username})")
            out.append(f"  username / auth user : {acc.username}")
            out.append(f"  password             : {acc.password}")
            out.append(f"  domain / server      : {acc.host}:{acc.port}")
            out.append("  transport            : UDP")
            out.append("  codecs               : G.711 A-law (PCMA), G.711 u-law (PCMU)")
            out.append("  DTMF                 : RFC 2833 / RFC 4733 (out of band)")
            out.append(
                "  local SIP port       : not the PBX's; Linphone: `ivr softphone --format "
                "linphone` prints a ready linphonerc"
            )
        out.append("")
    comment = "# " if fmt == "linphone" else ""  # a comment where it is pasted into a linphonerc
    out.append(f"{comment}Numbers to dial (inbound lines): {numbers}")
    return "\n".join(out)

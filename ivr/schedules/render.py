"""A scheduled report's e-mail: what a renderer makes (``Rendered``: subject, HTML, plain
text, the XLSX attachments) and the MIME message built from it.

The renderer itself (``ivr.web.schedule_mail.render``) lives with the web UI: it renders
the e-mail from the same report objects the report pages show, with the UI's templates and
word catalogues (fi, sv, en), which only ``ivr/web`` may use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate

from ivr.reports.model import CampaignReport, LineReport

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    html: str
    text: str
    attachments: tuple[Attachment, ...]


@dataclass(frozen=True, slots=True)
class Contents:
    """What one run of a schedule reports on."""

    org_name: str
    schedule_name: str
    campaigns: list[CampaignReport]
    lines: list[LineReport]
    language: str  # fi, sv, en
    timezone: str  # the organisation's
    at: datetime  # the run's instant


Renderer = Callable[[Contents], Rendered]


def safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)[:60] or "report"


def message(rendered: Rendered, recipients: list[str], *, at: datetime) -> EmailMessage:
    """The MIME message: text and HTML alternatives, the workbooks attached."""
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(at.timestamp(), localtime=False, usegmt=True)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    for item in rendered.attachments:
        msg.add_attachment(
            item.data, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=item.filename
        )
    return msg

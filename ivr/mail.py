"""Sending e-mail over SMTP (``[smtp]`` in the settings): plain, STARTTLS or implicit TLS,
with or without a login. Used by the scheduled reports and the webhooks' notices to admins.

``send_message`` raises ``MailError`` with a reason fit for the logs and the UI: the server's
reply or the connection problem, never the password (the settings' secrets are masked in
every log record too: ``ivr.redact``). TLS always verifies the server's certificate and
name (against ``smtp.ca_file`` when set, else the system's CAs).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from ivr.config import SmtpSettings


class MailError(Exception):
    """The message was not sent; ``str()`` says why (log-safe)."""


def _context(smtp: SmtpSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=smtp.ca_file or None)


def _scrub(text: str, smtp: SmtpSettings) -> str:
    return text.replace(smtp.password, "***") if smtp.password else text


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: str
    refused: tuple[str, ...]  # recipients the server refused (the others got the message)


def send_message(smtp: SmtpSettings, message: EmailMessage) -> Sent:
    """Send ``message`` (its To/Cc are the recipients; From is set from the settings when
    missing): the Message-ID it was sent with, and any recipients the server refused."""
    if not smtp.host:
        raise MailError("e-mail is not configured: set smtp.host and smtp.from_address")
    if "From" not in message:
        message["From"] = smtp.from_address
    if "Message-ID" not in message:
        domain = smtp.from_address.rpartition("@")[2] or None
        message["Message-ID"] = make_msgid(domain=domain)
    where = f"{smtp.host}:{smtp.effective_port}"
    try:
        client: smtplib.SMTP
        if smtp.security == "tls":
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.effective_port, timeout=smtp.timeout, context=_context(smtp)
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.effective_port, timeout=smtp.timeout)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=_context(smtp))
            if smtp.username:
                client.login(smtp.username, smtp.password)
            refused = client.send_message(message, from_addr=smtp.from_address)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"{where}: the server refused the login ({_reply(exc)})") from None
    except smtplib.SMTPRecipientsRefused as exc:
        bad = ", ".join(sorted(exc.recipients))
        raise MailError(f"{where}: the server refused every recipient ({bad})") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise MailError(f"{where}: {_scrub(str(exc), smtp)} (check smtp.security)") from None
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"{where}: the server answered {_reply(exc)}") from None
    except smtplib.SMTPException as exc:
        raise MailError(f"{where}: {_scrub(str(exc), smtp)}") from None
    except ssl.SSLError as exc:
        raise MailError(f"{where}: TLS failed ({exc.reason or exc})") from None
    except TimeoutError:
        raise MailError(f"{where}: no answer within {smtp.timeout:g} s") from None
    except OSError as exc:
        raise MailError(f"{where}: cannot connect ({exc.strerror or exc})") from None
    return Sent(str(message["Message-ID"]), tuple(sorted(refused)))


def send_text(smtp: SmtpSettings, to: list[str], subject: str, text: str) -> Sent | None:
    """A plain-text notice to ``to`` (None when there is nobody to send it to)."""
    if not to:
        return None
    message = EmailMessage()
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(text)
    return send_message(smtp, message)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    error = exc.smtp_error
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
    return f"{exc.smtp_code} {text}".strip()

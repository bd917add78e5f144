"""Keep secrets out of logs: every log record is masked against the known secret values.

``install()`` wraps the logging record factory, so the mask applies to every logger (ours,
httpx, websockets, panoramisk, huey, SQLAlchemy...) and every handler, including handlers
added later. The secrets are registered from the settings and ``secrets.toml``:

- every value in ``secrets.toml`` except user names (``[core]`` passwords and keys,
  ``[softphones]`` SIP passwords), and any key added there later;
- ``pbx.trunk_password``, ``smtp.password`` (and its SMTP AUTH encodings), and the password
  in ``database.url`` and ``jobs.redis_url``;
- derived forms that a library may print: percent-encoded (and decoded), and the HTTP basic
  authentication token (base64 of ``user:password``) for each user name and password pair.

A value shorter than ``MIN_LENGTH`` is not masked (it would blot out ordinary text).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
MIN_LENGTH = 4

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()  # longest first
_installed = False


def _variants(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote(value), unquote(value)}


def register(values: Iterable[str]) -> None:
    """Mask these values (and their percent-encoded forms) in every log record from now on."""
    global _secrets
    found = {v for value in values if value for v in _variants(value) if len(v) >= MIN_LENGTH}
    with _lock:
        merged = set(_secrets) | found
        _secrets = tuple(sorted(merged, key=len, reverse=True))


def basic_auth_token(username: str, password: str) -> str:
    """What HTTP basic authentication sends for this pair (an encoding, not a hash)."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def url_password(url: str) -> str:
    """The password in ``scheme://user:password@host/...``, or "" (never raises)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return ""
    return password or ""


def secrets_from_file(data: Mapping[str, Any]) -> list[str]:
    """The secret values of a parsed ``secrets.toml``: everything but user names, plus the
    basic authentication token of each ``X_username``/``X_password`` pair."""
    values: list[str] = []
    for section, table in data.items():
        if not isinstance(table, Mapping):
            continue
        for key, value in table.items():
            if not isinstance(value, str):
                continue
            if section == "core" and str(key).endswith("_username"):
                continue
            values.append(value)
            if section == "core" and str(key).endswith("_password"):
                user = table.get(str(key)[: -len("_password")] + "_username")
                if isinstance(user, str) and user:
                    values.append(basic_auth_token(user, value))
    return values


def register_settings(settings: Any) -> None:
    """The secrets of these settings (``ivr.config.Settings``) and of their secrets file."""
    from ivr.config import ConfigError, read_toml

    values = [
        settings.pbx.trunk_password,
        url_password(settings.database.url),
        url_password(settings.jobs.redis_url),
    ]
    if settings.pbx.trunk_username and settings.pbx.trunk_password:
        values.append(basic_auth_token(settings.pbx.trunk_username, settings.pbx.trunk_password))
    smtp = getattr(settings, "smtp", None)
    if smtp is not None and smtp.password:  # SMTP AUTH PLAIN/LOGIN send it base64-encoded
        values.append(smtp.password)
        values.append(base64.b64encode(smtp.password.encode()).decode())
        values.append(base64.b64encode(f"\0{smtp.username}\0{smtp.password}".encode()).decode())
    path = Path(settings.data_dir) / "secrets.toml"
    if path.is_file():
        # A broken file is reported by the command that needs it.
        with contextlib.suppress(ConfigError, OSError):
            values.extend(secrets_from_file(read_toml(path)))
    register(values)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for value in _secrets:
        if value in text:
            text = text.replace(value, MASK)
    return text


def _masked(record: logging.LogRecord) -> logging.LogRecord:
    if not _secrets:
        return record
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken record is logging's to report, unmasked args
        return record
    masked = redact(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def install() -> None:
    """Mask every log record made from now on in this process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return _masked(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True

"""The log mask (ivr.redact): every record, from any logger, with its secrets masked."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr import redact
from ivr.config import load_settings


@pytest.fixture()
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """A fresh mask installed for this test only, and a handler that captures everything."""
    factory = logging.getLogRecordFactory()
    monkeypatch.setattr(redact, "_secrets", ())
    monkeypatch.setattr(redact, "_installed", False)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logging.setLogRecordFactory(factory)


def test_every_logger_masks_registered_secrets_in_messages_args_and_tracebacks(
    captured: io.StringIO,
) -> None:
    redact.install()
    redact.install()  # idempotent
    redact.register(["Zq9-secret/pw", ""])
    logging.getLogger("websockets.client").debug(
        "> GET /ari?api_key=u:%s HTTP/1.1", "Zq9-secret/pw"
    )
    logging.getLogger("panoramisk").info("action %r", {"Secret": "Zq9-secret/pw"})
    logging.getLogger("httpx").warning("url http://u:Zq9-secret%2Fpw@h/")  # percent-encoded
    try:
        raise RuntimeError("login with Zq9-secret/pw failed")
    except RuntimeError:
        logging.getLogger("ivr.x").exception("failed")
    text = captured.getvalue()
    assert "Zq9-secret" not in text
    assert text.count("***") == 5  # the traceback has it twice: its source line and message
    assert "websockets.client > GET /ari?api_key=u:*** HTTP/1.1" in text
    assert "RuntimeError: login with *** failed" in text


def test_short_values_are_not_masked(captured: io.StringIO) -> None:
    redact.install()
    redact.register(["abc"])
    logging.getLogger("x").warning("abc def")
    assert "abc def" in captured.getvalue()


def test_settings_and_secrets_file_give_every_secret_but_user_names(
    tmp_path: Path, captured: io.StringIO
) -> None:
    (tmp_path / "secrets.toml").write_text(
        '[core]\nami_username = "ivr-amiuser"\nami_password = "amipass-1234"\n'
        'ari_username = "ivr-ariuser"\nari_password = "aripass-5678"\n'
        'web_secret_key = "webkey-9999"\nsome_future_token = "future-0000"\n'
        '[softphones]\nsoftphone1 = "phonepw-1111"\n'
    )
    settings = load_settings(
        environ={
            "IVR_DATA_DIR": str(tmp_path),
            "IVR_PBX_TRUNK_HOST": "sip.example.net",
            "IVR_PBX_TRUNK_USERNAME": "kunta",
            "IVR_PBX_TRUNK_PASSWORD": "trunkpw-2222",
            "IVR_DATABASE_URL": "postgresql://ivr:db%40pw-3333@127.0.0.1/ivr",
            "IVR_JOBS_REDIS_URL": "redis://:redispw-4444@127.0.0.1:6379/0",
        }
    )
    redact.install()
    redact.register_settings(settings)
    secrets = [
        "amipass-1234",
        "aripass-5678",
        "webkey-9999",
        "future-0000",
        "phonepw-1111",
        "trunkpw-2222",
        "db%40pw-3333",
        "db@pw-3333",
        "redispw-4444",
        base64.b64encode(b"ivr-ariuser:aripass-5678").decode(),
    ]
    log = logging.getLogger("ivr.test")
    for value in secrets:
        log.warning("value=%s", value)
    log.warning("users ivr-amiuser ivr-ariuser kunta")
    text = captured.getvalue()
    assert not [v for v in secrets if v in text], text
    assert text.count("value=***") == len(secrets)
    assert "users ivr-amiuser ivr-ariuser kunta" in text  # user names stay readable

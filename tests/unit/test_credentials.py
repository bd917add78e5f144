from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ivr.bootstrap import init
from ivr.config import ConfigError, load_settings
from ivr.credentials import ensure_credentials, load_credentials


def test_init_generates_every_secret_once(tmp_path: Path) -> None:
    settings = load_settings(environ={"IVR_DATA_DIR": str(tmp_path)})
    app, done = init(settings)
    creds = app.credentials
    assert len(done) == 3  # config, secrets, database
    secrets = [
        creds.ami_password,
        creds.ari_password,
        creds.web_secret_key,
        *creds.softphones.values(),
    ]
    assert all(len(s) >= 16 for s in secrets)
    assert len(set(secrets)) == len(secrets)  # nothing shared, nothing default
    assert sorted(creds.softphones) == ["softphone1", "softphone2", "softphone3"]
    mode = stat.S_IMODE((tmp_path / "secrets.toml").stat().st_mode)
    assert mode == 0o600
    again, done_again = init(settings)
    assert done_again == []  # idempotent: nothing rewritten
    assert again.credentials == creds


def test_two_data_dirs_get_different_secrets(tmp_path: Path) -> None:
    a, _ = ensure_credentials(load_settings(environ={"IVR_DATA_DIR": str(tmp_path / "a")}))
    b, _ = ensure_credentials(load_settings(environ={"IVR_DATA_DIR": str(tmp_path / "b")}))
    assert a.ari_password != b.ari_password
    assert a.softphones["softphone1"] != b.softphones["softphone1"]


def test_a_deleted_secret_is_regenerated_and_others_kept(tmp_path: Path) -> None:
    settings = load_settings(environ={"IVR_DATA_DIR": str(tmp_path)})
    first, _ = ensure_credentials(settings)
    path = tmp_path / "secrets.toml"
    path.write_text(
        "\n".join(
            line for line in path.read_text().splitlines() if not line.startswith("ari_password")
        )
    )
    with pytest.raises(ConfigError, match="core.ari_password is missing"):
        load_credentials(settings)
    second, changed = ensure_credentials(settings)
    assert changed
    assert second.ari_password != first.ari_password
    assert second.ami_password == first.ami_password


def test_more_softphones_adds_accounts(tmp_path: Path) -> None:
    env = {"IVR_DATA_DIR": str(tmp_path)}
    first, _ = ensure_credentials(load_settings(environ=env))
    more, changed = ensure_credentials(load_settings(environ={**env, "IVR_PBX_SOFTPHONES": "5"}))
    assert changed
    assert len(more.softphones) == 5
    assert more.softphones["softphone1"] == first.softphones["softphone1"]


def test_load_without_init_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `ivr init`"):
        load_credentials(load_settings(environ={"IVR_DATA_DIR": str(tmp_path)}))

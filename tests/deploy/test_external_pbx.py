"""``[pbx] external``: Asterisk runs elsewhere (its own container); ivr only renders its
config into the data directory (``ivr pbx render``) and never starts or stops it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import load_settings
from ivr.credentials import ensure_credentials
from ivr.pbx.process import PbxController
from ivr.pbx.tree import EXTERNAL_MODULES_DIR, PbxError
from tests.support.cli import run_ivr


def _conf(path: Path) -> dict[str, str]:
    pairs = (line.split("=>", 1) for line in path.read_text().splitlines() if "=>" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def test_render_for_an_external_asterisk_uses_its_paths_and_the_shared_data_dir(
    tmp_path: Path,
) -> None:
    env = {"IVR_DATA_DIR": str(tmp_path), "IVR_PBX_EXTERNAL": "true"}
    settings = load_settings(env)
    assert settings.pbx.external is True
    assert load_settings({"IVR_DATA_DIR": str(tmp_path)}).pbx.external is False
    creds, _ = ensure_credentials(settings)
    pbx = PbxController(settings, creds)
    dirs = pbx.render()
    conf = _conf(dirs.etc / "asterisk.conf")
    assert conf["astmoddir"] == EXTERNAL_MODULES_DIR
    assert conf["astdatadir"] == "/usr/share/asterisk"
    # Recordings: where the telephony worker looks is where that Asterisk writes.
    assert conf["astspooldir"] == str(tmp_path / "pbx" / "spool")
    assert pbx.recordings_dir == dirs.recordings == tmp_path / "pbx" / "spool" / "recording"
    assert conf["astrundir"] == str(tmp_path / "pbx" / "run")
    with pytest.raises(PbxError, match="pbx.external"):
        pbx.start()
    with pytest.raises(PbxError, match="pbx.external"):
        pbx.stop()


def test_modules_dir_overrides_the_external_default(tmp_path: Path) -> None:
    env = {
        "IVR_DATA_DIR": str(tmp_path),
        "IVR_PBX_EXTERNAL": "yes",
        "IVR_PBX_MODULES_DIR": "/opt/asterisk/modules",
    }
    settings = load_settings(env)
    creds, _ = ensure_credentials(settings)
    dirs = PbxController(settings, creds).render()
    assert _conf(dirs.etc / "asterisk.conf")["astmoddir"] == "/opt/asterisk/modules"


def test_ivr_pbx_render_command(tmp_path: Path) -> None:
    env = {"IVR_DATA_DIR": str(tmp_path), "IVR_PBX_EXTERNAL": "true"}
    assert run_ivr(env, "init").returncode == 0
    done = run_ivr(env, "pbx", "render")
    assert done.returncode == 0, done.stderr
    assert f"rendered Asterisk's config into {tmp_path / 'pbx' / 'etc'}" in done.stdout
    for name in ("asterisk.conf", "pjsip.conf", "ari.conf", "http.conf", "manager.conf"):
        assert (tmp_path / "pbx" / "etc" / name).is_file(), name
    refused = run_ivr(env, "pbx", "start")
    assert refused.returncode == 2 and "pbx.external is set" in refused.stderr


def test_external_needs_a_boolean(tmp_path: Path) -> None:
    from ivr.config import ConfigError

    with pytest.raises(ConfigError, match="IVR_PBX_EXTERNAL: expected true or false"):
        load_settings({"IVR_DATA_DIR": str(tmp_path), "IVR_PBX_EXTERNAL": "maybe"})

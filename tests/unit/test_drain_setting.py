"""`[telephony] drain_seconds`: how long `ivr telephony` lets live calls go on at SIGTERM."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import ConfigError, load_settings


def test_drain_seconds_default_file_and_environment(tmp_path: Path) -> None:
    env = {"IVR_DATA_DIR": str(tmp_path)}
    assert load_settings(environ=env).telephony.drain_seconds == 60.0
    (tmp_path / "ivr.toml").write_text("[telephony]\ndrain_seconds = 5\n")
    assert load_settings(environ=env).telephony.drain_seconds == 5.0
    env["IVR_TELEPHONY_DRAIN_SECONDS"] = "0"  # 0: the live calls end at once
    assert load_settings(environ=env).telephony.drain_seconds == 0.0


@pytest.mark.parametrize("value", ["-1", "nan", "100000"])
def test_bad_drain_seconds_is_named(tmp_path: Path, value: str) -> None:
    env = {"IVR_DATA_DIR": str(tmp_path), "IVR_TELEPHONY_DRAIN_SECONDS": value}
    with pytest.raises(ConfigError, match=r"telephony\.drain_seconds"):
        load_settings(environ=env)

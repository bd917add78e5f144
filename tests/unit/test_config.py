from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.config import ConfigError, load_settings


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    s = load_settings(environ={"IVR_DATA_DIR": str(tmp_path)})
    assert s.data_dir == tmp_path
    assert s.pbx.bind_address == "127.0.0.1"
    assert s.pbx.sip_port == 5060
    assert s.tree_dir == s.cache_dir / "asterisk-sid"


def test_file_overrides_defaults_and_environment_overrides_file(tmp_path: Path) -> None:
    (tmp_path / "ivr.toml").write_text(
        'log_level = "DEBUG"\n[pbx]\nsip_port = 5070\nami_port = 5039\n'
    )
    env = {"IVR_DATA_DIR": str(tmp_path), "IVR_PBX_SIP_PORT": "5080"}
    s = load_settings(environ=env)
    assert s.pbx.sip_port == 5080  # environment wins over the file
    assert s.pbx.ami_port == 5039  # the file wins over the default
    assert s.log_level == "DEBUG"


def test_explicit_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "other.toml"
    cfg.write_text('[pbx]\ninbound_numbers = ["200", "+358291234567"]\n')
    s = load_settings(environ={"IVR_DATA_DIR": str(tmp_path), "IVR_CONFIG": str(cfg)})
    assert s.pbx.inbound_numbers == ("200", "+358291234567")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[pbx]\nsip_prot = 5060\n", "unknown setting pbx.sip_prot"),
        ("colour = 1\n", "unknown setting colour"),
        ('[pbx]\nsip_port = "five"\n', "pbx.sip_port: expected an integer"),
        ("[pbx]\nsip_port = 70000\n", "pbx.sip_port: 70000 is not a port number"),
        ("[pbx]\nami_port = 5060\n", "pbx.ami_port: port 5060 is also pbx.sip_port"),
        ("[pbx]\nsip_port = 10005\n", "pbx.sip_port: port 10005 lies inside the RTP range"),
        ("[pbx]\nrtp_start = 10000\nrtp_end = 10010\n", "RTP range 10000-10010 is too small"),
        ('[pbx]\ntrunk_register = "yes"\n', "pbx.trunk_register: expected true or false"),
        ('[pbx]\ninbound_numbers = ["12a"]\n', "pbx.inbound_numbers.0"),
        ("pbx = 3\n", "[pbx] must be a table"),
        ("[pbx\n", "not valid TOML"),
        ('log_level = "LOUD"\n', "log_level: 'LOUD' is not one of"),
    ],
)
def test_bad_file_values_name_the_setting(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "ivr.toml").write_text(content)
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"IVR_DATA_DIR": str(tmp_path)})
    assert message in str(err.value)
    if "TOML" in message or "unknown" in message:
        assert str(tmp_path / "ivr.toml") in str(err.value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IVR_PBX_SIP_PORTT", "1", "environment IVR_PBX_SIP_PORTT: unknown setting"),
        ("IVR_FOO", "1", "environment IVR_FOO: unknown setting"),
        ("IVR_PBX_SIP_PORT", "x", "environment IVR_PBX_SIP_PORT: expected an integer"),
        ("IVR_PBX_TRUNK_REGISTER", "maybe", "expected true or false"),
    ],
)
def test_bad_environment_names_the_variable(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"IVR_DATA_DIR": str(tmp_path), name: value})
    assert message in str(err.value)


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="IVR_CONFIG"):
        load_settings(environ={"IVR_CONFIG": str(tmp_path / "nope.toml")})


def test_environment_list_and_bool_values(tmp_path: Path) -> None:
    env = {
        "IVR_DATA_DIR": str(tmp_path),
        "IVR_PBX_INBOUND_NUMBERS": "100, 0291234567",
        "IVR_PBX_TRUNK_REGISTER": "yes",
    }
    s = load_settings(environ=env)
    assert s.pbx.inbound_numbers == ("100", "0291234567")
    assert s.pbx.trunk_register is True


def test_database_url_default_file_and_environment(tmp_path: Path) -> None:
    s = load_settings(environ={"IVR_DATA_DIR": str(tmp_path)})
    assert s.database.url == ""
    assert s.database_url == f"sqlite:///{tmp_path / 'ivr.db'}"
    (tmp_path / "ivr.toml").write_text('[database]\nurl = "sqlite:////srv/ivr/file.db"\n')
    assert load_settings(environ={"IVR_DATA_DIR": str(tmp_path)}).database_url == (
        "sqlite:////srv/ivr/file.db"
    )
    pg = "postgresql+psycopg://ivr:s3cret@127.0.0.1:5432/ivr"
    env = {"IVR_DATA_DIR": str(tmp_path), "IVR_DATABASE_URL": pg, "IVR_DATABASE_ECHO": "on"}
    s = load_settings(environ=env)
    assert s.database_url == pg  # the environment wins over the file
    assert s.database.echo is True
    env["IVR_DATABASE_URL"] = "mysql://ivr:s3cret@db/ivr"
    with pytest.raises(ConfigError) as err:
        load_settings(environ=env)
    assert "database.url: unsupported database 'mysql'" in str(err.value)
    assert "s3cret" not in str(err.value)  # never echo a password


def test_speech_sections_from_file_and_environment(tmp_path: Path) -> None:
    (tmp_path / "ivr.toml").write_text(
        '[stt]\nengine = "google"\ngoogle_location = "eu"\n'
        '[stt.models]\nfi = "/srv/fi"\ndefault = "small"\n'
        '[jobs]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:6390/0"\n'
        '[prompts]\ntts_engine = "piper"\npiper_voices = { fi = "fi_FI-harri-medium" }\n'
    )
    env = {"IVR_DATA_DIR": str(tmp_path), "IVR_STT_MODELS": "sv=/srv/sv"}
    settings = load_settings(env)
    assert settings.stt.engine == "google"
    assert settings.stt.models == {"sv": "/srv/sv"}  # the environment replaces the table
    assert settings.jobs.backend == "redis"
    assert settings.prompts.piper_voices == {"fi": "fi_FI-harri-medium"}
    assert load_settings({"IVR_DATA_DIR": str(tmp_path)}).stt.models == {
        "fi": "/srv/fi",
        "default": "small",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[stt]\nengine = "whisper.cpp"\n', "stt.engine: 'whisper.cpp' is not one of"),
        ('[stt.models]\nde = "/srv/de"\n', "stt.models.de: expected fi, sv, en or default"),
        ("[stt.models]\nfi = 3\n", "stt.models: expected a table of strings"),
        ('[stt]\ncompute_type = "int4"\n', "stt.compute_type: 'int4' is not one of"),
        ('[jobs]\nbackend = "redis"\n', "jobs.redis_url: required"),
        ('[jobs]\nredis_url = "http://x"\n', "jobs.redis_url: expected redis://"),
        ('[prompts]\ntts_engine = "festival"\n', "prompts.tts_engine: 'festival'"),
        ("[prompts]\nmax_seconds = 0\n", "prompts.max_seconds: must be between"),
    ],
)
def test_bad_speech_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "ivr.toml").write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({"IVR_DATA_DIR": str(tmp_path)})


def test_trunk_qualify_is_off_by_default_and_checked(tmp_path: Path) -> None:
    base = {"IVR_DATA_DIR": str(tmp_path)}
    assert load_settings(environ=base).pbx.trunk_qualify_seconds == 0
    on = load_settings(environ={**base, "IVR_PBX_TRUNK_QUALIFY_SECONDS": "60"})
    assert on.pbx.trunk_qualify_seconds == 60
    with pytest.raises(ConfigError, match="pbx.trunk_qualify_seconds: -1 is not between 0"):
        load_settings(environ={**base, "IVR_PBX_TRUNK_QUALIFY_SECONDS": "-1"})
    with pytest.raises(ConfigError, match="IVR_PBX_TRUNK_QUALIFY_SECONDS: expected an integer"):
        load_settings(environ={**base, "IVR_PBX_TRUNK_QUALIFY_SECONDS": "often"})


# Settings that go into Asterisk's config files: a value that could add config is refused.
RENDERED_TEXT_SETTINGS = (
    "trunk_host",
    "trunk_username",
    "trunk_password",
    "trunk_from_domain",
    "trunk_transport",
    "bind_address",
    "stasis_app",
    "asterisk_binary",
    "modules_dir",
    "tree_dir",
)
BAD_CHARACTERS = ("\n", "\r", ";", "[", "]", "\t", "\x00", "\x1b", "\x7f")


def _toml(text: str) -> str:
    """``text`` for a TOML basic string (control characters as \\uXXXX escapes)."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


@pytest.mark.parametrize("bad", BAD_CHARACTERS, ids=repr)
@pytest.mark.parametrize("setting", RENDERED_TEXT_SETTINGS)
def test_rendered_settings_refuse_config_syntax_in_the_file(
    tmp_path: Path, setting: str, bad: str
) -> None:
    (tmp_path / "ivr.toml").write_text(f'[pbx]\n{setting} = "{_toml(f"s3cr3t{bad}x")}"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"IVR_DATA_DIR": str(tmp_path)})
    assert str(err.value).startswith(f"pbx.{setting}: must not contain a newline")
    assert "';', '[' or ']'" in str(err.value)
    assert "s3cr3t" not in str(err.value)  # the value (a password?) is never quoted


@pytest.mark.parametrize("bad", ["\n", "\r", ";", "[", "]", "\x1b"], ids=repr)
@pytest.mark.parametrize("setting", RENDERED_TEXT_SETTINGS)
def test_rendered_settings_refuse_config_syntax_in_the_environment(
    tmp_path: Path, setting: str, bad: str
) -> None:
    variable = f"IVR_PBX_{setting.upper()}"
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"IVR_DATA_DIR": str(tmp_path), variable: f"s3cr3t{bad}x"})
    assert str(err.value).startswith(f"pbx.{setting}: must not contain a newline")
    assert "s3cr3t" not in str(err.value)


def test_a_trunk_password_with_a_newline_is_refused_naming_it(tmp_path: Path) -> None:
    env = {
        "IVR_DATA_DIR": str(tmp_path),
        "IVR_PBX_TRUNK_HOST": "sip.example.net",
        "IVR_PBX_TRUNK_PASSWORD": "hunter2\n[evil]\ntype = endpoint",
    }
    with pytest.raises(ConfigError) as err:
        load_settings(environ=env)
    message = str(err.value)
    assert message.startswith("pbx.trunk_password: must not contain a newline")
    assert "cannot be escaped reliably" in message and "hunter2" not in message


@pytest.mark.parametrize("bad", ["\n", ";", "[", "]"], ids=repr)
def test_inbound_numbers_and_folders_refuse_config_syntax(tmp_path: Path, bad: str) -> None:
    (tmp_path / "ivr.toml").write_text(f'[pbx]\ninbound_numbers = ["100", "{_toml(f"1{bad}2")}"]\n')
    with pytest.raises(ConfigError, match=r"^pbx\.inbound_numbers\.1: must not contain"):
        load_settings(environ={"IVR_DATA_DIR": str(tmp_path)})
    folder = tmp_path / f"data{bad}dir"
    with pytest.raises(ConfigError, match=r"^data_dir: must not contain"):
        load_settings(environ={"IVR_DATA_DIR": str(folder)})


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("bind_address", "localhost", "pbx.bind_address: 'localhost' is not an IP address"),
        ("trunk_host", "sip example.net", "pbx.trunk_host: 'sip example.net' is not a host"),
        ("trunk_host", "a@b", "pbx.trunk_host: 'a@b' is not a host name"),
        ("trunk_from_domain", "x:5060", "pbx.trunk_from_domain: 'x:5060' is not a host"),
        ("trunk_username", "kunta user", "pbx.trunk_username: must not contain spaces"),
        ("trunk_password", " pw", "pbx.trunk_password: must not start or end with a space"),
    ],
)
def test_trunk_and_bind_values_are_checked(
    tmp_path: Path, setting: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(environ={"IVR_DATA_DIR": str(tmp_path), f"IVR_PBX_{setting.upper()}": value})


def test_ordinary_provider_values_are_accepted(tmp_path: Path) -> None:
    env = {
        "IVR_DATA_DIR": str(tmp_path),
        "IVR_PBX_BIND_ADDRESS": "::1",
        "IVR_PBX_TRUNK_HOST": "sip.operator-1.example.fi",
        "IVR_PBX_TRUNK_FROM_DOMAIN": "192.0.2.10",
        "IVR_PBX_TRUNK_USERNAME": "+358291234567",
        "IVR_PBX_TRUNK_PASSWORD": "p@ss#w0rd!$%&/(){}=?'\"<>,.:-_",
    }
    pbx = load_settings(environ=env).pbx
    assert pbx.trunk_password == env["IVR_PBX_TRUNK_PASSWORD"]
    assert pbx.bind_address == "::1"

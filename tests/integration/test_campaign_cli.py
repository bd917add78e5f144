"""`ivr campaign ...` as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run_ivr

FLOW = Path(__file__).parents[1] / "e2e" / "flows" / "mini-survey.yaml"


ivr = run_ivr


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    environment = {"IVR_DATA_DIR": str(tmp_path / "data")}
    assert ivr(environment, "init").returncode == 0
    return environment


def test_campaign_from_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    made = ivr(env, "campaign", "create", "syksy", "--flow", str(FLOW))
    assert made.returncode == 0, made.stderr
    assert "warning: " in made.stderr and "caller" in made.stderr.lower()  # no caller ID set
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "Puhelin;Kieli;Syntymävuosi;Postinumero;Kylä\n"
        "040 123 4567;fi;1950;23500;Kalanti\n"
        "+358 40 123 4567;sv;1950;23500;Kalanti\n"  # the same number: merged
        "not a number;fi;1980;23500;Pyhämaa\n"
        "0501234567;ruotsi;1999;23501;Pyhämaa\n"
        ";fi;1970;23500;\n",
        encoding="utf-8",
    )
    result = ivr(env, "campaign", "import-contacts", "syksy", str(contacts), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["accepted"] == 2 and report["duplicates"] == 1
    assert [r["line"] for r in report["rejected"]] == [4, 6]
    assert "not a phone number" in report["rejected"][0]["reason"]
    again = json.loads(
        ivr(env, "campaign", "import-contacts", "syksy", str(contacts), "--json").stdout
    )
    assert again["accepted"] == 0  # re-importing adds nothing
    status = json.loads(ivr(env, "campaign", "status", "syksy", "--json").stdout)
    assert status["status"] == "draft" and status["contacts"] == 2
    assert status["by_language"]["sv"]["contacts"] == 1
    started = ivr(env, "campaign", "start", "syksy")
    assert started.returncode == 0 and "2 first attempt(s) scheduled" in started.stdout
    assert ivr(env, "campaign", "pause", "syksy").returncode == 0
    listed = ivr(env, "campaign", "list").stdout
    assert "syksy: paused (paused by staff)" in listed
    assert ivr(env, "campaign", "resume", "syksy").returncode == 0
    assert ivr(env, "campaign", "stop", "syksy").returncode == 0
    text = ivr(env, "campaign", "status", "syksy").stdout
    assert "campaign syksy: stopped" in text and "response rate" in text


def test_foreign_caller_id_warns_and_bad_input_is_named(env: dict[str, str]) -> None:
    made = ivr(
        env, "campaign", "create", "ulko", "--flow", str(FLOW), "--caller-id", "+7 495 123 4567"
    )
    assert made.returncode == 0
    assert "Russia" in made.stderr
    bad_window = ivr(
        env, "campaign", "create", "x", "--flow", str(FLOW), "--windows", "mon-fri 25-26"
    )
    assert bad_window.returncode == 2 and "Traceback" not in bad_window.stderr
    broken = Path(env["IVR_DATA_DIR"]) / "broken.yaml"
    broken.write_text(
        "id: b\nname: b\nversion: '1'\nlanguages: [fi]\nstart: nowhere\n"
        "nodes:\n  bye: {kind: end, prompt: {fi: Hei}}\n"
    )
    refused = ivr(env, "campaign", "create", "y", "--flow", str(broken))
    assert refused.returncode == 2 and "broken.yaml:5: start" in refused.stderr
    assert "nowhere" in refused.stderr
    empty = ivr(env, "campaign", "start", "ulko")
    assert empty.returncode == 2 and "no contacts" in empty.stderr
    missing = ivr(env, "campaign", "status", "nonexistent")
    assert missing.returncode == 2 and "no campaign named 'nonexistent'" in missing.stderr

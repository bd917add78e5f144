"""`ivr demo` as a newcomer runs it: the PBX, the telephony and job workers and the web UI
as child processes, a campaign to about fifty simulated residents run to its end with
exactly the expected outcomes, the English open answers transcribed, and nothing left
running afterwards (nor after Ctrl-C in the middle of the calls)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivr.demo_flow import RESIDENTS, expected_outcomes, expected_transcripts
from tests.support.instance import instance_env
from tests.support.ports import free_port

pytestmark = pytest.mark.pbx

# What would be left of a demo: Asterisk, `ivr telephony`, `ivr worker`, `ivr web` and
# gunicorn's workers (all of them name the data directory in their command line or have it
# as IVR_DATA_DIR).


def _demo_env(data_dir: Path) -> dict[str, str]:
    """The demo's ports (private to this test) and no other IVR_* setting."""
    env = instance_env(data_dir)
    for name in ("IVR_DATA_DIR", "IVR_DATABASE_URL"):
        env.pop(name, None)
    env["IVR_WEB_PORT"] = str(free_port())
    full = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    full.update(env)
    return full


def _demo(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ivr.cli", "demo", "--data-dir", str(data_dir), *args]


def _left_running(data_dir: Path) -> list[str]:
    needle = str(data_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and (needle in cmdline or b"IVR_DATA_DIR=" + needle in environ):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


def _funnel(stdout: str) -> dict[str, int]:
    """The counts of the printed funnel (the text of `ivr campaign status`)."""
    part = stdout.split("== the funnel", 1)[1].split("\n==", 1)[0]
    counts = {
        key: int(value) for key, value in re.findall(r"^  ([a-z ]+?)\s{2,}(\d+)$", part, flags=re.M)
    }
    outcomes = re.search(r"^  outcomes\s+(.*)$", part, flags=re.M)
    assert outcomes is not None, part
    for item in outcomes.group(1).split(", "):
        name, value = item.rsplit(" ", 1)
        counts[f"outcome {name}"] = int(value)
    return counts


@pytest.mark.timeout(600)
def test_demo_once_runs_the_campaign_to_its_end_and_leaves_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    started = time.monotonic()
    result = subprocess.run(
        _demo(data_dir, "--once"),
        env=_demo_env(data_dir),
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    seconds = time.monotonic() - started
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert "demo: OK" in result.stdout, out[-6000:]

    # The funnel counts are exactly what the personas do.
    funnel = _funnel(result.stdout)
    contacts = sum(r.count for r in RESIDENTS)
    expected = expected_outcomes()
    answered = expected["completed"] + expected["partial"]
    assert funnel["contacts"] == contacts and funnel["calls placed"] == contacts, funnel
    assert funnel["answered"] == answered and funnel["survey started"] == answered, funnel
    assert funnel["completed"] == expected["completed"], funnel
    got = {k.removeprefix("outcome "): v for k, v in funnel.items() if k.startswith("outcome ")}
    assert got == expected, (got, expected)

    # The English open answers have transcripts; Finnish and Swedish wait for a model.
    with sqlite3.connect(data_dir / "ivr.db") as db:
        rows = db.execute(
            "SELECT r.language, t.machine_text FROM recordings r "
            "LEFT JOIN transcripts t ON t.recording_id = r.id"
        ).fetchall()
    english = [text for language, text in rows if language == "en"]
    assert len(english) == expected_transcripts() > 0, rows
    assert all(text and text.strip() for text in english), english
    assert {language for language, text in rows if text is None} <= {"fi", "sv"}, rows
    assert "Finnish and Swedish" in result.stdout and "ivr models" in result.stdout

    # The web UI and its logins, or a plain word that this build has none.
    if "web UI not available in this build" not in result.stdout:
        assert re.search(r"staff web UI: http://127\.0\.0\.1:\d+/", result.stdout)
        assert re.search(r"manager\s+\S+@\S+\s+password \S{8,}", result.stdout)
        assert re.search(r"reviewer\s+\S+@\S+\s+password \S{8,}", result.stdout)
        # The ready report (`ivr report --format json`) agrees with the residents (the
        # demo itself compares every AAPOR disposition and says FAILED otherwise).
        assert "== the report" in result.stdout
        assert re.search(rf"{contacts} contacts, {contacts} called, {answered} answered, "
                         rf"{expected['completed']} completed; RR1 ", result.stdout)  # fmt: skip
        assert re.search(r"review the open answers .*: http://127\.0\.0\.1:\d+/o/[0-9a-f-]+"
                         r"/review/", result.stdout)  # fmt: skip
    for log in ("telephony.log", "worker.log"):
        assert (data_dir / "logs" / log).stat().st_size > 0

    assert _left_running(data_dir) == []
    print(f"ivr demo --once took {seconds:.1f} s")


@pytest.mark.timeout(300)
def test_sigint_during_the_calls_stops_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    log = tmp_path / "demo.out"
    with log.open("w") as out:
        proc = subprocess.Popen(
            _demo(data_dir, "--once"),
            env=_demo_env(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not re.search(r"in call [1-9]", log.read_text()):
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
        assert _left_running(data_dir)  # the children run now
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    text = log.read_text()
    assert code == 130, text[-4000:]
    assert "SIGINT: stopping everything" in text and "Asterisk stopped" in text, text[-4000:]
    assert _left_running(data_dir) == [], text[-4000:]

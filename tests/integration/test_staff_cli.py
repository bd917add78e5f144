"""`ivr org`, `ivr user` and `ivr web` as an operator types them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from ivr.bootstrap import load_app
from ivr.config import load_settings
from ivr.store.org_models import User
from tests.support.cli import run_ivr
from tests.support.ports import free_port

ivr = run_ivr


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    environment = {"IVR_DATA_DIR": str(tmp_path / "data")}
    assert ivr(environment, "init").returncode == 0
    return environment


def _password_hash(env: dict[str, str], email: str) -> str:
    services = load_app(load_settings(environ=env)).services()
    try:
        with services.factory() as s:
            stored = s.scalar(sa.select(User.password_hash).where(User.email == email))
            assert stored is not None
            return stored
    finally:
        services.close()


def _logs_in(env: dict[str, str], email: str, password: str) -> bool:
    from ivr.accounts.service import LoginRefused

    services = load_app(load_settings(environ=env)).services()
    try:
        services.accounts.login(email, password, "127.0.0.1")
        return True
    except LoginRefused:
        return False
    finally:
        services.close()


def test_org_add_and_a_duplicate_name(env: dict[str, str]) -> None:
    made = ivr(env, "org", "add", "Suonenjoki", "--json")
    assert made.returncode == 0, made.stderr
    org = json.loads(made.stdout)
    assert org["name"] == "Suonenjoki" and len(org["id"]) == 36
    again = ivr(env, "org", "add", "Suonenjoki")
    assert again.returncode == 2
    assert "Suonenjoki" in again.stderr and "exists already" in again.stderr
    assert "Traceback" not in again.stderr
    assert ivr(env, "org", "add", "Rautalampi", "--timezone", "Europe/Stockholm").returncode == 0
    listed = ivr(env, "org", "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["Rautalampi", "Suonenjoki"]
    bad_zone = ivr(env, "org", "add", "Vesanto", "--timezone", "Mars/Olympus")
    assert bad_zone.returncode == 2 and "timezone" in bad_zone.stderr


def test_user_add_prints_a_password_once_that_logs_in(env: dict[str, str]) -> None:
    assert ivr(env, "org", "add", "Suonenjoki").returncode == 0
    assert ivr(env, "org", "add", "Rautalampi").returncode == 0
    made = ivr(
        env, "user", "add", "Anna.Admin@Suonenjoki.fi", "--org", "Suonenjoki",
        "--role", "admin", "--name", "Anna Admin", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    out = json.loads(made.stdout)
    password = out["password"]
    assert out["email"] == "anna.admin@suonenjoki.fi" and out["role"] == "admin"
    assert len(password) >= 16
    stored = _password_hash(env, "anna.admin@suonenjoki.fi")
    assert stored.startswith("$argon2id$") and password not in stored
    assert _logs_in(env, "anna.admin@suonenjoki.fi", password)
    assert not _logs_in(env, "anna.admin@suonenjoki.fi", password + "x")
    # The same person in a second organisation: a role there, the password unchanged.
    second = ivr(
        env, "user", "add", "anna.admin@suonenjoki.fi", "--org", "Rautalampi",
        "--role", "reviewer",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "password is unchanged" in second.stdout and password not in second.stdout
    assert _password_hash(env, "anna.admin@suonenjoki.fi") == stored
    assert _logs_in(env, "anna.admin@suonenjoki.fi", password)
    # Plain output: the password printed once, with a warning that it is not kept.
    plain = ivr(env, "user", "add", "m@suonenjoki.fi", "--org", "Suonenjoki", "--role", "manager")
    assert plain.returncode == 0 and "shown once" in plain.stdout


def test_user_add_refuses_bad_input_naming_the_field(env: dict[str, str]) -> None:
    assert ivr(env, "org", "add", "Suonenjoki").returncode == 0
    role = ivr(env, "user", "add", "a@suonenjoki.fi", "--org", "Suonenjoki", "--role", "boss")
    assert role.returncode == 2 and "--role" in role.stderr and "boss" in role.stderr
    email = ivr(env, "user", "add", "not-an-address", "--org", "Suonenjoki", "--role", "admin")
    assert email.returncode == 2 and "email" in email.stderr and "not-an-address" in email.stderr
    org = ivr(env, "user", "add", "a@suonenjoki.fi", "--org", "Nowhere", "--role", "admin")
    assert org.returncode == 2 and "--org" in org.stderr and "Nowhere" in org.stderr
    twice = [
        ivr(env, "user", "add", "a@suonenjoki.fi", "--org", "Suonenjoki", "--role", "admin")
        for _ in range(2)
    ]
    assert twice[0].returncode == 0 and twice[1].returncode == 2
    assert "already a member" in twice[1].stderr
    for result in (role, email, org, twice[1]):
        assert "Traceback" not in result.stderr


def _children(pid: int) -> set[int]:
    """Every process descended from ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture()
def web(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    full.update(env, IVR_WEB_PORT=str(port), IVR_WEB_WORKERS="2")
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "web"],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_flow_add_keeps_a_flow_file_in_the_organisations_flows(env: dict[str, str]) -> None:
    assert ivr(env, "org", "add", "Suonenjoki").returncode == 0
    flow = Path(__file__).resolve().parents[2] / "examples" / "flows" / "housing-line.yaml"
    added = ivr(env, "flow", "add", str(flow), "--org", "Suonenjoki", "--json")
    assert added.returncode == 0, added.stderr
    out = json.loads(added.stdout)
    assert out["org"] == "Suonenjoki" and out["flow"] == "housing-line"
    services = load_app(load_settings(environ=env)).services()
    try:
        from ivr.accounts.audit import Actor

        org = services.accounts.org_by_name("Suonenjoki")
        stored = services.flows.get(Actor.cli(org.id), out["id"])
        assert stored.yaml == flow.read_text(encoding="utf-8")
    finally:
        services.close()
    again = ivr(env, "flow", "add", str(flow), "--org", "Suonenjoki")
    assert again.returncode == 1
    assert f"{flow}:" in again.stderr and "has a flow with the id 'housing-line'" in again.stderr
    nowhere = ivr(env, "flow", "add", str(flow), "--org", "Nowhere")
    assert nowhere.returncode == 2 and "--org" in nowhere.stderr


def test_tag_add_and_list_with_keys_and_clear_errors(env: dict[str, str]) -> None:
    assert ivr(env, "org", "add", "Suonenjoki").returncode == 0
    added = ivr(env, "tag", "add", "Liikenne", "--org", "Suonenjoki", "--key", "1", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["key"] == 1
    assert ivr(env, "tag", "add", "Kulttuuri", "--org", "Suonenjoki").returncode == 0
    taken = ivr(env, "tag", "add", "Koulut", "--org", "Suonenjoki", "--key", "1")
    assert taken.returncode == 2 and "another tag of the organisation has that key" in taken.stderr
    bad = ivr(env, "tag", "add", "Koulut", "--org", "Suonenjoki", "--key", "12")
    assert bad.returncode == 2 and "--key must be a digit 1-9" in bad.stderr
    listed = ivr(env, "tag", "list", "--org", "Suonenjoki")
    assert [line.split("\t")[:2] for line in listed.stdout.splitlines()] == [
        ["1", "Liikenne"],
        ["-", "Kulttuuri"],
    ]
    nowhere = ivr(env, "tag", "list", "--org", "Nowhere")
    assert nowhere.returncode == 2 and "--org" in nowhere.stderr


def test_ivr_web_serves_on_its_port_and_stops_on_sigterm(
    web: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = web
    deadline = time.monotonic() + 60
    answer = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
            break
        except httpx.TransportError:
            time.sleep(0.2)  # polling for the port to open, with a deadline
    assert answer is not None, f"ivr web did not answer on port {port}: exit {process.poll()}"
    assert answer.status_code == 200
    assert '<html lang="fi">' in answer.text and "Kirjaudu sisään" in answer.text
    assert "Content-Security-Policy" in answer.headers
    workers = _children(process.pid)
    assert len(workers) >= 2, f"gunicorn workers: {workers}"
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert f"127.0.0.1:{port}" in output
    assert not [pid for pid in workers if _alive(pid)], "a worker outlived ivr web"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)

"""`ivr token add|list|revoke` as an operator types them: the token printed once works
against the API (the same database), and stops working when revoked."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_ivr as ivr


def test_tokens_from_the_command_line(tmp_path: Path) -> None:
    env = {"IVR_DATA_DIR": str(tmp_path / "data")}
    assert ivr(env, "init").returncode == 0
    assert ivr(env, "org", "add", "Uusikaupunki").returncode == 0
    missing = ivr(env, "token", "add", "--org", "Eiole", "--scope", "read")
    assert missing.returncode == 2 and "--org" in missing.stderr
    made = ivr(env, "token", "add", "--org", "Uusikaupunki", "--scope", "write",
               "--name", "CRM", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)
    assert token["token"].startswith("ivr_") and token["scope"] == "write"
    listed = ivr(env, "token", "list", "--org", "Uusikaupunki")
    assert token["id"] in listed.stdout and "CRM" in listed.stdout
    assert token["token"] not in listed.stdout and "never used" in listed.stdout

    from ivr.bootstrap import load_app
    from ivr.config import load_settings
    from ivr.web import create_app

    app = create_app(services=load_app(load_settings(environ=env)).services(), testing=True)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token['token']}"}
    assert client.get("/api/v1/campaigns", headers=auth).status_code == 200
    assert "never used" not in ivr(env, "token", "list", "--org", "Uusikaupunki").stdout
    revoked = ivr(env, "token", "revoke", token["id"], "--org", "Uusikaupunki")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert client.get("/api/v1/campaigns", headers=auth).status_code == 401
    assert "revoked" in ivr(env, "token", "list", "--org", "Uusikaupunki").stdout
    app.extensions["ivr"].close()

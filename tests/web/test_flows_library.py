"""The flow library (ivr/flows/library.py): the one service behind the flow pages.

A real database (SQLite, or PostgreSQL with IVR_TEST_DATABASE=postgresql), real audit rows,
real prompt rendering in a child process; no mocks.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.accounts.audit import Actor, Forbidden, NotFound
from ivr.flows import library_yaml
from ivr.flows.library import (
    FlowChanged,
    FlowInUse,
    FlowLibrary,
    PreviewError,
    prompt_prefix,
)
from ivr.flows.loader import FlowError, parse_flow
from ivr.services import Services
from ivr.store import campaigns as cstore
from ivr.store.models import CampaignStatus
from ivr.store.org_models import AuditEntry, InboundLine
from tests.web.test_flows_access import FlowSite, fsite, unique

__all__ = ["fsite"]  # the module's site fixture

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"

SMALL = """\
# A small survey (this comment is the author's)
id: small
name: Pieni kysely
version: "1"
languages: [fi, sv]
start: hello
nodes:
  hello:
    kind: say
    prompt:
      fi: Hei!   # greeting
      sv: Hej!
    next: q1
  q1:
    kind: choice
    prompt: {fi: "Kyllä 1, ei 2.", sv: "Ja 1, nej 2."}
    options:
      - {key: "1", value: "yes"}
      - {key: "2", value: "no"}
    next: bye
    fallback: bye
  bye:
    kind: end
    prompt:
      fi: Kiitos.
      sv: Tack.
"""


def small(key: str | None = None) -> tuple[str, str]:
    """A new flow id and the small flow's YAML with it."""
    key = key or unique("small")
    return key, SMALL.replace("id: small\n", f"id: {key}\n")


def audit_of(services: Services, target: str) -> list[AuditEntry]:
    with services.factory() as s:
        query = sa.select(AuditEntry).where(AuditEntry.target_id == target)
        return list(s.scalars(query.order_by(AuditEntry.id)))


def test_roles_and_organisations(fsite: FlowSite) -> None:
    flows = fsite.services.flows
    manager, reviewer = fsite.actor("A", "manager"), fsite.actor("A", "reviewer")
    key, text = small()
    with pytest.raises(Forbidden):
        flows.create(reviewer, text)
    made = flows.create(manager, text)
    assert made.key == key and made.title == "Pieni kysely" and made.flow is not None
    assert made.id in [f.id for f in flows.list_flows(reviewer)]
    other = fsite.actor("B", "admin")
    assert made.id not in [f.id for f in flows.list_flows(other)]
    for call in (
        lambda: flows.get(other, made.id),
        lambda: flows.save(other, made.id, text),
        lambda: flows.upload(other, text, source="x.yaml", replace=made.id),
        lambda: flows.delete(other, made.id),
        lambda: flows.prompts(other, made.id),
        lambda: flows.recording(other, made.id, "nodes.hello.prompt", "fi"),
        lambda: flows.preview_file(other, made.id, "nodes.hello.prompt", "fi"),
    ):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(Forbidden):
        flows.save(reviewer, made.id, text)
    with pytest.raises(Forbidden):
        flows.delete(reviewer, made.id)
    nobody = Actor(actor="x@example.fi", user_id="x", org_id=made.org_id, role=None)
    with pytest.raises(Forbidden):
        flows.list_flows(nobody)


def test_changes_are_audited_in_their_transaction(fsite: FlowSite) -> None:
    flows = fsite.services.flows
    manager = fsite.actor("A", "manager")
    key, text = small()
    made = flows.create(manager, text)
    saved = flows.save(manager, made.id, text.replace("Pieni kysely", "Pieni"))
    assert saved.title == "Pieni" and saved.updated_by == manager.actor
    flows.upload(manager, text, source="small.yaml", replace=made.id)
    with pytest.raises(FlowError):  # refused: no audit entry either
        flows.save(manager, made.id, text.replace("next: bye", "next: nowhere"))
    flows.delete(manager, made.id)
    entries = audit_of(fsite.services, made.id)
    assert [e.action for e in entries] == ["flow.create", "flow.save", "flow.upload", "flow.delete"]
    assert all(e.user_id == manager.user_id and e.org_id == manager.org_id for e in entries)
    assert json.loads(entries[2].detail)["source"] == "small.yaml"
    assert json.loads(entries[0].detail)["flow"] == key


def test_problems_have_lines_and_paths(fsite: FlowSite) -> None:
    flows = fsite.services.flows
    manager = fsite.actor("A", "manager")
    key, text = small()
    with pytest.raises(FlowError) as caught:
        flows.create(manager, text.replace("next: bye\n    fallback", "next: byebye\n    fallback"))
    problem = caught.value.problems[0]
    assert problem.path == "nodes.q1.next" and problem.line == 20
    assert "byebye" in problem.message
    flows.create(manager, text)
    with pytest.raises(FlowError) as caught:
        flows.create(manager, text)  # the same id again
    assert [(p.path, p.line) for p in caught.value.problems] == [("id", 2)]
    assert flows.create(fsite.actor("B", "manager"), text).key == key  # another organisation's


def test_another_organisations_upload_names_are_refused(fsite: FlowSite) -> None:
    flows = fsite.services.flows
    theirs = prompt_prefix(fsite.orgs["B"]) + "hello-fi-0123456789"
    _key, text = small()
    text = text.replace("      sv: Hej!\n", f"      sv: Hej!\n      upload: {{fi: {theirs}}}\n")
    with pytest.raises(FlowError) as caught:
        flows.create(fsite.actor("A", "manager"), text)
    [problem] = caught.value.problems
    assert problem.path == "nodes.hello.prompt.upload.fi" and problem.line == 13
    ours = text.replace(theirs, prompt_prefix(fsite.orgs["A"]) + "hello-fi-0123456789")
    assert flows.create(fsite.actor("A", "manager"), ours).flow is not None


def test_a_stale_editor_cannot_overwrite_a_newer_save(fsite: FlowSite) -> None:
    flows = fsite.services.flows
    manager = fsite.actor("A", "manager")
    _key, text = small()
    made = flows.create(manager, text)
    opened = made.revision
    flows.save(manager, made.id, text.replace("Pieni kysely", "Uusi nimi"), revision=opened)
    with pytest.raises(FlowChanged):
        flows.save(manager, made.id, text.replace("Pieni kysely", "Vanha"), revision=opened)
    assert flows.get(manager, made.id).title == "Uusi nimi"


def test_delete_is_refused_while_an_inbound_line_answers_with_it(fsite: FlowSite) -> None:
    flows = fsite.services.flows
    manager = fsite.actor("A", "manager")
    made = flows.create(manager, small()[1])
    number = "040" + unique("n").split("-")[1][:7].translate(str.maketrans("abcdef", "123456"))
    with fsite.services.factory.begin() as s:
        s.add(InboundLine(org_id=manager.org_id, number=number, flow_id=made.id))
    with pytest.raises(FlowInUse) as caught:
        flows.delete(manager, made.id)
    assert caught.value.numbers == [number]
    assert flows.get(manager, made.id).id == made.id


def test_running_campaigns_are_named(fsite: FlowSite) -> None:
    flows = fsite.services.flows
    manager = fsite.actor("A", "manager")
    key, text = small()
    made = flows.create(manager, text)
    with fsite.services.factory.begin() as s:
        for name, status, org in (
            ("Kevät", CampaignStatus.RUNNING, fsite.orgs["A"]),
            ("Tauolla", CampaignStatus.PAUSED, fsite.orgs["A"]),
            ("Valmis", CampaignStatus.COMPLETED, fsite.orgs["A"]),
            ("Toisen", CampaignStatus.RUNNING, fsite.orgs["B"]),
        ):
            campaign = cstore.create_campaign(
                s, name=f"{name} {key}", flow_path="/nowhere.yaml", org_id=org
            )
            campaign.status, campaign.flow_id = status, key
    running = (f"Kevät {key}", f"Tauolla {key}")
    assert flows.get(manager, made.id).running == running
    assert [f.running for f in flows.list_flows(manager) if f.id == made.id] == [running]


def test_set_upload_keeps_the_authors_comments_and_layout() -> None:
    edited = library_yaml.set_upload(SMALL, "nodes.hello.prompt", "sv", "o1-hello")
    assert "# greeting" in edited and "# A small survey" in edited
    assert "      upload: {sv: o1-hello}\n" in edited
    again = library_yaml.set_upload(edited, "nodes.q1.prompt", "fi", "o1-q")
    assert 'prompt: {fi: "Kyllä 1, ei 2.", sv: "Ja 1, nej 2.", upload: {fi: o1-q}}' in again
    replaced = library_yaml.set_upload(again, "nodes.hello.prompt", "sv", "o1-new")
    flow = parse_flow(replaced)
    assert flow.nodes["hello"].prompt is not None
    assert dict(flow.nodes["hello"].prompt.upload) == {"sv": "o1-new"}
    assert dict(flow.nodes["q1"].prompt.upload) == {"fi": "o1-q"}  # type: ignore[union-attr]


def test_set_upload_replaces_a_recording_file() -> None:
    text = (EXAMPLES / "strategy-survey.yaml").read_text(encoding="utf-8")
    edited = library_yaml.set_upload(text, "nodes.intro.prompt", "fi", "o1-intro")
    prompt = parse_flow(edited).nodes["intro"].prompt
    assert prompt is not None
    assert dict(prompt.upload) == {"fi": "o1-intro"} and dict(prompt.recording) == {}
    assert parse_flow(edited).nodes.keys() == parse_flow(text).nodes.keys()


def test_preview_that_hangs_is_stopped_with_an_error(
    fsite: FlowSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TTS engine that never finishes: the render is killed at the time limit (with what
    it started) and the preview says so."""
    manager = fsite.actor("A", "manager")
    made = fsite.services.flows.create(manager, small()[1])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    started = tmp_path / "started"
    hang = bin_dir / "espeak-ng"
    hang.write_text(f"#!/bin/sh\necho $$ > {started}\nexec sleep 600\n")
    hang.chmod(hang.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    settings = fsite.services.settings
    empty_cache = tmp_path / "cache"
    hanging = FlowLibrary(
        fsite.services.factory,
        fsite.services.clock,
        replace(settings, cache_dir=empty_cache),
        render_timeout=10.0,
    )
    with pytest.raises(PreviewError) as caught:
        hanging.preview(manager, made.id)
    assert "longer than 10 seconds" in str(caught.value)
    pid = int(started.read_text())
    status = Path(f"/proc/{pid}/stat")
    # The hanging engine was killed with the renderer (gone, or a zombie not yet reaped).
    assert not status.exists() or status.read_text().split(") ", 1)[1].startswith("Z")

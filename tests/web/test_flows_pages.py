"""The flow pages through Flask's test client: the list, a new flow, uploading a flow file
(with its problems shown by line and path), a new version, the YAML, deleting, and the
notice about running campaigns."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import sqlalchemy as sa

from ivr.store import campaigns as cstore
from ivr.store.models import CampaignStatus
from ivr.store.org_models import AuditEntry, FlowDoc
from tests.web.test_flows_access import BASE, FlowSite, fsite, post, text, unique

__all__ = ["fsite"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"

GOOD = """\
id: {key}
name: Kirjastokysely
version: "1"
languages: [fi, sv]
start: hello
nodes:
  hello:
    kind: say
    prompt: {{fi: Hei!, sv: Hej!}}
    next: bye
  bye:
    kind: end
    prompt: {{fi: Kiitos., sv: Tack.}}
"""


def flows_url(fsite: FlowSite, org: str = "A") -> str:
    return f"/o/{fsite.orgs[org]}/flows"


def test_the_list_shows_only_the_organisations_flows(fsite: FlowSite) -> None:
    ours = fsite.services.flows.create(fsite.actor("A", "manager"), GOOD.format(key=unique("l")))
    theirs = fsite.services.flows.create(fsite.actor("B", "manager"), GOOD.format(key="theirs"))
    page = text(fsite.client("A", "reviewer").get(f"{flows_url(fsite)}/", base_url=BASE))
    assert ours.key in page and "Kirjastokysely" in page
    assert theirs.id not in page and "theirs" not in page
    assert "New flow" not in page  # a reviewer reads, a manager changes
    manager_page = text(fsite.client("A", "manager").get(f"{flows_url(fsite)}/", base_url=BASE))
    assert "New flow" in manager_page and "Upload a flow file" in manager_page


def test_a_new_flow_opens_in_the_editor(fsite: FlowSite) -> None:
    client = fsite.client("A", "manager")
    key = unique("uusi")
    response = post(
        client,
        f"{flows_url(fsite)}/new",
        [("name", "Uusi kysely"), ("flow_id", key), ("languages", "fi"), ("languages", "sv")],
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/edit")
    editor = text(client.get(response.headers["Location"], base_url=BASE))
    assert 'name="steps-0-text-fi"' in editor and 'name="steps-0-text-sv"' in editor
    again = post(
        client,
        f"{flows_url(fsite)}/new",
        [("name", "Toinen"), ("flow_id", key), ("languages", "fi")],
    )
    assert again.status_code == 400
    assert f"identifier {key} already" in html.unescape(text(again))
    empty = post(client, f"{flows_url(fsite)}/new", [("name", ""), ("flow_id", "")])
    assert empty.status_code == 400
    page = text(empty)
    assert "There is a problem" in page and 'href="#name"' in page


def test_an_uploaded_flow_with_problems_shows_each_line_and_path(fsite: FlowSite) -> None:
    client = fsite.client("A", "manager")
    broken = GOOD.format(key=unique("rikki")).replace("    next: bye\n", "    next: byee\n")
    response = post(client, f"{flows_url(fsite)}/upload", {"text": broken})
    assert response.status_code == 400
    page = html.unescape(text(response))
    assert "nothing was saved" in page
    # nodes.hello.next is on line 10 of the file, and the message names the missing step
    assert '<td class="num">10</td><td><code>nodes.hello.next</code></td>' in page
    assert "no node 'byee'; did you mean 'bye'?" in page
    assert broken in page  # the pasted text stays in the form to be corrected


def test_an_uploaded_file_that_is_not_utf8_is_refused_with_its_line(fsite: FlowSite) -> None:
    client = fsite.client("A", "manager")
    data = GOOD.format(key=unique("latin")).replace("Kiitos.", "Kiitos äiti.").encode("latin-1")
    response = post(
        client,
        f"{flows_url(fsite)}/upload",
        {"file": (io.BytesIO(data), "kysely.yaml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    page = html.unescape(text(response))
    assert "In kysely.yaml:" in page and "not UTF-8 text" in page
    assert '<td class="num">13</td>' in page


def test_an_uploaded_file_is_saved_and_audited(fsite: FlowSite) -> None:
    client = fsite.client("A", "manager")
    key = unique("tiedosto")
    body = GOOD.format(key=key).encode()
    response = post(
        client,
        f"{flows_url(fsite)}/upload",
        {"file": (io.BytesIO(body), "kirjasto.yaml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    page = text(client.get(response.headers["Location"], base_url=BASE))
    assert "The flow file was checked and saved." in page and key in page
    with fsite.services.factory() as s:
        doc = s.scalars(sa.select(FlowDoc).where(FlowDoc.name == key)).one()
        assert doc.org_id == fsite.orgs["A"] and doc.yaml == body.decode()
        entry = s.scalars(sa.select(AuditEntry).where(AuditEntry.target_id == doc.id)).one()
        assert entry.action == "flow.upload" and entry.actor == fsite.who("A", "manager").email
        assert json.loads(entry.detail)["source"] == "kirjasto.yaml"
    download = client.get(f"{flows_url(fsite)}/{doc.id}/yaml", base_url=BASE)
    assert download.status_code == 200 and download.data == body
    assert f'filename="{key}.yaml"' in download.headers["Content-Disposition"]


def test_a_new_version_replaces_the_flow(fsite: FlowSite) -> None:
    client = fsite.client("A", "manager")
    key = unique("versio")
    made = fsite.services.flows.create(fsite.actor("A", "manager"), GOOD.format(key=key))
    newer = GOOD.format(key=key).replace('version: "1"', 'version: "2"')
    response = post(client, f"{flows_url(fsite)}/{made.id}/upload", {"text": newer})
    assert response.status_code == 302
    assert fsite.services.flows.get(fsite.actor("A", "reviewer"), made.id).yaml == newer
    clash = GOOD.format(key=key).replace("Kirjastokysely", "Toinen")
    other = fsite.services.flows.create(fsite.actor("A", "manager"), GOOD.format(key=unique("x")))
    refused = post(client, f"{flows_url(fsite)}/{other.id}/upload", {"text": clash})
    assert refused.status_code == 400
    assert "has a flow with the id" in html.unescape(text(refused))


def test_deleting_a_flow(fsite: FlowSite) -> None:
    client = fsite.client("A", "manager")
    made = fsite.services.flows.create(fsite.actor("A", "manager"), GOOD.format(key=unique("d")))
    confirm = text(client.get(f"{flows_url(fsite)}/{made.id}/delete", base_url=BASE))
    assert "Delete Kirjastokysely?" in confirm
    response = post(client, f"{flows_url(fsite)}/{made.id}/delete")
    assert response.status_code == 302
    assert client.get(f"{flows_url(fsite)}/{made.id}", base_url=BASE).status_code == 404


def test_a_flow_in_a_running_campaign_says_it_can_still_be_edited(fsite: FlowSite) -> None:
    key = unique("kaynnissa")
    made = fsite.services.flows.create(fsite.actor("A", "manager"), GOOD.format(key=key))
    with fsite.services.factory.begin() as s:
        campaign = cstore.create_campaign(
            s, name=f"Kevätkysely {key}", flow_path="/x.yaml", org_id=fsite.orgs["A"]
        )
        campaign.status, campaign.flow_id = CampaignStatus.RUNNING, key
    client = fsite.client("A", "manager")
    for page in ("", "/edit"):
        body = html.unescape(text(client.get(f"{flows_url(fsite)}/{made.id}{page}", base_url=BASE)))
        assert f"Running campaigns use this flow: Kevätkysely {key}." in body
        assert "Each campaign keeps the copy of the flow it started with" in body


def test_a_hand_written_flow_the_editor_cannot_show_opens_read_only(fsite: FlowSite) -> None:
    client = fsite.client("A", "manager")
    survey = (EXAMPLES / "strategy-survey.yaml").read_text(encoding="utf-8")
    survey = survey.replace("id: strategy-survey", f"id: {unique('strategia')}")
    response = post(client, f"{flows_url(fsite)}/upload", {"text": survey})
    assert response.status_code == 302
    flow_url = response.headers["Location"].split("?")[0]
    view = html.unescape(text(client.get(flow_url, base_url=BASE)))
    assert "names recording files that are not in this service (1)" in view
    page = client.get(f"{flow_url}/edit", base_url=BASE)
    assert page.status_code == 200
    body = html.unescape(text(page))
    assert "opens read only" in body
    assert (
        "nodes.intro.prompt.recording.fi: plays the Finnish recording recordings/intro-fi.wav; "
        "recorded prompts are not editable here"
    ) in body
    assert "<pre" in body and survey.splitlines()[0] in body  # the YAML, comments and all
    assert 'name="steps-0-id"' not in body

"""The form-based flow editor through its pages, as a browser without JavaScript uses it: the
form is read from the page, filled in, and posted back with the button that was pressed.

A three-question flow (a choice, a scale, an open answer; Finnish and Swedish) is built by
form posts alone; it validates and opens again unchanged. Errors stand beside their fields
and in the summary; steps move and go; a stale form cannot overwrite a newer save.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

from flask.testing import FlaskClient

from ivr.flows import editor
from ivr.flows.editor_model import MESSAGES
from ivr.flows.loader import parse_flow
from ivr.web.flow_messages import ENGLISH_CODES, templates
from tests.web.test_flows_access import BASE, FlowSite, fsite, post, text, unique

__all__ = ["fsite"]


class _Form(HTMLParser):
    """The fields a browser would submit from the form ``#flow-editor`` (no button)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self.textarea: str | None = None
        self.select: str | None = None
        self.options: list[tuple[str, bool]] = []
        self.buffer = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "flow-editor":
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "file"):
            if a.get("type") != "checkbox" or "checked" in a:
                self.fields.append((a["name"], a.get("value", "on" if "checked" in a else "")))
        elif tag == "textarea":
            self.textarea, self.buffer = a["name"], ""
        elif tag == "select":
            self.select, self.options = a["name"], []
        elif tag == "option" and self.select is not None:
            self.options.append((a.get("value", ""), "selected" in a))

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.buffer += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea" and self.textarea is not None:
            value = self.buffer[1:] if self.buffer.startswith("\n") else self.buffer
            self.fields.append((self.textarea, value))
            self.textarea = None
        elif tag == "select" and self.select is not None:
            chosen = [v for v, selected in self.options if selected] or [self.options[0][0]]
            self.fields.append((self.select, chosen[0]))
            self.select = None


def form_of(page: str) -> dict[str, str]:
    """The editor form's fields (``languages`` joined as the page's checkboxes post them)."""
    parser = _Form()
    parser.feed(page)
    fields: dict[str, str] = {}
    languages: list[str] = []
    for name, value in parser.fields:
        if name == "languages":
            languages.append(value)
        else:
            fields.setdefault(name, value)
    fields["languages"] = ",".join(languages)
    return fields


def press(
    fsite: FlowSite, client: FlaskClient, url: str, fields: dict[str, str], op: str, **extra: str
) -> tuple[int, str, dict[str, str]]:
    """Submit the form with the button ``op``; returns the status, the page and its form."""
    skip = {"languages", "csrf_token", *extra}
    data = [(k, v) for k, v in fields.items() if k not in skip]
    data += [("languages", x) for x in fields["languages"].split(",") if x]
    data += [("op", op), *extra.items()]
    response = post(client, url, data)
    if response.status_code == 302:
        response = client.get(response.headers["Location"], base_url=BASE)
    page = text(response)
    return response.status_code, page, form_of(page)


def step_prefix(fields: dict[str, str], step_id: str) -> str:
    return next(k[: -len("-id")] for k, v in fields.items() if k.endswith("-id") and v == step_id)


def new_flow(fsite: FlowSite) -> tuple[FlaskClient, str, dict[str, str]]:
    client = fsite.client("A", "manager")
    response = post(
        client,
        f"/o/{fsite.orgs['A']}/flows/new",
        [("name", "Puistokysely"), ("flow_id", unique("puisto")), ("languages", "fi"),
         ("languages", "sv")],
    )  # fmt: skip
    url = response.headers["Location"]
    return client, url, form_of(text(client.get(url, base_url=BASE)))


def test_a_three_question_flow_built_with_the_form(fsite: FlowSite) -> None:
    client, url, form = new_flow(fsite)
    # The new flow: welcome (message), question (choice), end. The choice becomes question 1.
    q1 = step_prefix(form, "question")
    form.update({
        "name": "Puistokysely / Parkenkät",
        "steps-0-text-fi": "Hei! Kysymme kolme kysymystä puistoista.",
        "steps-0-text-sv": "Hej! Vi ställer tre frågor om parkerna.",
        f"{q1}-text-fi": "Mikä puisto on sinulle tärkein? Keskuspuisto 1, rantapuisto 2, muu 3.",
        f"{q1}-text-sv": "Vilken park är viktigast för dig? Centralparken 1, strandparken 2, "
        "annan 3.",
        f"{q1}-options-2-key": "3",
        f"{q1}-options-2-value": "other",
        f"{q1}-options-2-label-fi": "Muu",
        f"{q1}-options-2-label-sv": "Annan",
        f"{q1}-retries": "1",
    })  # fmt: skip
    form[f"{q1}-options-0-value"], form[f"{q1}-options-1-value"] = "central", "shore"
    status, page, form = press(fsite, client, url, form, "add", add_kind="scale")
    assert status == 200 and "Not saved yet" in page and "Step 3: Scale" in page
    q2 = step_prefix(form, "scale-1")
    form.update({
        f"{q2}-text-fi": "Kuinka tyytyväinen olet puistojen kuntoon asteikolla yhdestä viiteen?",
        f"{q2}-text-sv": "Hur nöjd är du med parkernas skick på en skala från ett till fem?",
    })  # fmt: skip
    status, page, form = press(fsite, client, url, form, "add", add_kind="open")
    assert status == 200 and "Step 4: Open answer (recorded)" in page
    q3 = step_prefix(form, "open-1")
    form.update({
        f"{q3}-text-fi": "Kerro piippauksen jälkeen, mitä puistoihin pitäisi tehdä.",
        f"{q3}-text-sv": "Berätta efter pipet vad som borde göras i parkerna.",
        f"{q3}-max_seconds": "90",
    })  # fmt: skip
    submitted = dict(form)
    status, page, reopened = press(fsite, client, url, form, "save")
    assert status == 200 and "Saved." in page
    # It validates, with the three questions in order, in both languages.
    flow_id = url.rstrip("/").split("/")[-2]
    record = fsite.services.flows.get(fsite.actor("A", "reviewer"), flow_id)
    flow = parse_flow(record.yaml)
    assert [n.kind for n in flow.nodes.values()] == ["say", "choice", "scale", "open", "end"]
    assert flow.languages == ("fi", "sv")
    assert [o.value for o in flow.nodes["question"].options] == ["central", "shore", "other"]
    assert (flow.nodes["scale-1"].min_value, flow.nodes["scale-1"].max_value) == (1, 5)
    assert flow.nodes["open-1"].max_seconds == 90 and flow.nodes["question"].retries == 1
    for node in flow.nodes.values():
        assert node.prompt is not None and set(node.prompt.text) == {"fi", "sv"}
    # ... and opens again unchanged: the same form, the same YAML when saved once more.
    # (The CSRF token is signed with the time: it differs once a second has passed.)
    for volatile in ("revision", "csrf_token"):
        submitted.pop(volatile), reopened.pop(volatile)
    assert reopened == submitted
    opened = editor.open_flow(record.yaml)
    assert isinstance(opened, editor.Editable)
    assert editor.save_flow(opened) == record.yaml
    status, _page, _form = press(
        fsite, client, url, reopened | {"revision": record.revision}, "save"
    )
    assert status == 200
    assert fsite.services.flows.get(fsite.actor("A", "reviewer"), flow_id).yaml == record.yaml


def test_errors_stand_beside_their_fields_and_in_the_summary(fsite: FlowSite) -> None:
    client, url, form = new_flow(fsite)
    q = step_prefix(form, "question")
    form[f"{q}-text-sv"] = ""
    form[f"{q}-options-1-key"] = "x"
    status, page, again = press(fsite, client, url, form, "save")
    assert status == 400
    page = html.unescape(page)
    assert "There is a problem" in page
    assert f'<a href="#{q}-text-sv">Step 2 (question), What the caller hears (Swedish): ' in page
    assert "write the Swedish text" in page
    assert f'<p class="error-message" id="{q}-text-sv-error">write the Swedish text</p>' in page
    assert f"id=\"{q}-options-1-key-error\">an option key is one digit 0-9, got 'x'</p>" in page
    assert again[f"{q}-options-1-key"] == "x"  # what was typed stays
    record = fsite.services.flows.get(fsite.actor("A", "manager"), url.split("/")[-2])
    assert "x" not in [o.key for o in parse_flow(record.yaml).nodes["question"].options]


def test_steps_move_and_go_with_buttons(fsite: FlowSite) -> None:
    client, url, form = new_flow(fsite)
    status, page, form = press(fsite, client, url, form, "add", add_kind="say")
    message = step_prefix(form, "message-1")
    form[f"{message}-text-fi"], form[f"{message}-text-sv"] = "Vielä yksi asia.", "En sak till."
    status, page, form = press(fsite, client, url, form, f"up:{message}")
    assert status == 200
    order = [form[f"steps-{n}-id"] for n in range(4)]
    assert order == ["welcome", "message-1", "question", "end"]
    assert form["steps-0-next"] == "message-1" and form["steps-1-next"] == "question"
    status, page, form = press(fsite, client, url, form, f"down:{step_prefix(form, 'welcome')}")
    assert [form[f"steps-{n}-id"] for n in range(4)] == ["message-1", "welcome", "question", "end"]
    assert form["start"] == "message-1"
    status, page, form = press(fsite, client, url, form, f"remove:{step_prefix(form, 'welcome')}")
    assert [form[f"steps-{n}-id"] for n in range(3)] == ["message-1", "question", "end"]
    assert "steps-3-id" not in form
    status, page, form = press(fsite, client, url, form, "save")
    assert status == 200 and "Saved." in page
    record = fsite.services.flows.get(fsite.actor("A", "manager"), url.split("/")[-2])
    assert list(parse_flow(record.yaml).nodes) == ["message-1", "question", "end"]


def test_removing_a_step_that_is_used_says_where(fsite: FlowSite) -> None:
    client, url, form = new_flow(fsite)
    status, page, again = press(fsite, client, url, form, f"remove:{step_prefix(form, 'end')}")
    assert status == 400
    page = html.unescape(page)
    assert "'end' is used here; say where to go instead" in page
    q = step_prefix(form, "question")
    assert f'<a href="#{q}-next">Step 2 (question), Next step: ' in page
    assert again["steps-2-id"] == "end"  # nothing was removed


def test_a_stale_form_does_not_overwrite_a_newer_save(fsite: FlowSite) -> None:
    client, url, form = new_flow(fsite)
    other = fsite.client("A", "admin")
    first = dict(form)
    form["name"] = "Ensin tallennettu"
    assert press(fsite, other, url, form, "save")[0] == 200
    first["name"] = "Myöhässä"
    status, page, _form = press(fsite, client, url, first, "save")
    assert status == 409
    assert "Someone else saved this flow after you opened it" in html.unescape(page)
    record = fsite.services.flows.get(fsite.actor("A", "manager"), url.split("/")[-2])
    assert record.title == "Ensin tallennettu"


def test_every_editor_message_is_translatable(fsite: FlowSite) -> None:
    """The page translates the editor's messages by code: every code has its msgid here,
    and the English is the editor's own."""
    assert set(MESSAGES) <= ENGLISH_CODES
    with fsite.web.test_request_context(headers={"Accept-Language": "en"}):
        english = templates()
    assert {code: english[code] for code in MESSAGES} == dict(MESSAGES)

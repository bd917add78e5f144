"""An open answer's context as the reviewer needs it beside the clip: the question as it
was asked (the prompt text in the call's language, from the campaign's flow as it was
frozen at its start, or the inbound line's flow), and the caller's other answers in the
same call with their option labels."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.flows.loader import FlowError, parse_flow
from ivr.flows.model import Flow, Node
from ivr.store import repo
from ivr.store.models import Call, Campaign, TranscriptRow
from ivr.store.org_models import FlowDoc, InboundLine


@dataclass(frozen=True)
class OtherAnswer:
    node_id: str
    question: str  # the prompt text in the call's language ("" when the flow is unknown)
    kind: str
    value: str  # the option's label where the node has options, else the value


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> Flow | None:
    try:
        return parse_flow(text, source="<review>")
    except FlowError:
        return None


def flow_of_campaign(campaign: Campaign | None) -> Flow | None:
    if campaign is None or not campaign.flow_snapshot:
        return None
    return _parsed(campaign.flow_snapshot)


def flow_of_call(s: Session, row: TranscriptRow, call: Call | None) -> Flow | None:
    """The flow the caller heard: the campaign's frozen flow, else the inbound line's."""
    if row.campaign_id:
        campaign = s.get(Campaign, row.campaign_id)
        if campaign is not None and campaign.org_id == row.org_id:
            return flow_of_campaign(campaign)
        return None
    if call is None or not call.line_number or row.org_id is None:
        return None
    text = s.scalar(
        sa.select(FlowDoc.yaml)
        .join(InboundLine, InboundLine.flow_id == FlowDoc.id)
        .where(InboundLine.number == call.line_number, InboundLine.org_id == row.org_id)
    )
    return _parsed(text) if text else None


def prompt_text(node: Node | None, language: str, default: str = "") -> str:
    """A node's prompt in ``language`` (else the flow's default language, else any)."""
    if node is None or node.prompt is None:
        return ""
    texts = node.prompt.text
    return texts.get(language) or texts.get(default) or next(iter(texts.values()), "")


def value_label(node: Node | None, value: str, language: str, default: str = "") -> str:
    if node is None:
        return value
    for option in node.options:
        if option.value == value:
            return option.label.get(language) or option.label.get(default) or value
    return value


def other_answers(
    s: Session, call_id: str, skip_node: str, flow: Flow | None, language: str
) -> list[OtherAnswer]:
    """The answers that count in the call (the latest per question), in the order given,
    without the open answer under review."""
    default = flow.default_language if flow else ""
    found = []
    for node_id, answer in repo.latest_answers(s, call_id).items():
        if node_id == skip_node:
            continue
        node = flow.nodes.get(node_id) if flow else None
        found.append(
            OtherAnswer(
                node_id=node_id,
                question=prompt_text(node, language, default),
                kind=answer.kind.value,
                value=value_label(node, answer.value, language, default),
            )
        )
    return found


def open_questions(flows: list[Flow], language: str) -> list[tuple[str, str]]:
    """The open questions of these flows (node id, a short label), each once."""
    seen: dict[str, str] = {}
    for flow in flows:
        for node in flow.nodes.values():
            if node.kind == "open" and node.id not in seen:
                text = prompt_text(node, language, flow.default_language)
                short = text if len(text) <= 70 else text[:67].rstrip() + "…"
                seen[node.id] = f"{node.id}: {short}" if short else node.id
    return sorted(seen.items())

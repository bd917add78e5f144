"""Where a campaign's flow comes from, and reading it.

A campaign names its flow in ``Campaign.flow_path``, one of:

- ``flow:<id>``: a flow kept in the database (``FlowDoc``, edited or uploaded in the
  browser) of the campaign's own organisation;
- a file path: a flow file (the command line; the web offers only the example flows
  shipped in ``examples/flows/``, chosen as ``example:<file name>``).

The flow is checked when the campaign is created or its flow changed, and frozen into the
campaign (``flow_snapshot``) when it starts: a later edit of the flow does not change the
questions of a campaign that is running.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.flows.loader import FlowError, load_flow, parse_flow
from ivr.flows.model import Flow
from ivr.store.models import Campaign
from ivr.store.org_models import FlowDoc

DB_PREFIX: Final = "flow:"
EXAMPLE_PREFIX: Final = "example:"
EXAMPLES: Final = Path(__file__).resolve().parents[2] / "examples" / "flows"


class UnknownFlow(LookupError):
    """No such flow for this campaign (another organisation's, or a path the web may not
    name)."""


@dataclass(frozen=True)
class FlowChoice:
    value: str  # what a form posts: "flow:<id>" or "example:<file>"
    label: str
    example: bool


def example_flows() -> dict[str, Path]:
    """The example flows shipped with the source (file name -> path); none when installed
    without them."""
    if not EXAMPLES.is_dir():
        return {}
    return {p.name: p for p in sorted(EXAMPLES.glob("*.yaml")) if p.is_file()}


def choices(s: Session, org_id: str | None) -> list[FlowChoice]:
    """The flows a campaign of ``org_id`` may use: its organisation's flows (by name), then
    the examples."""
    found: list[FlowChoice] = []
    if org_id is not None:
        for flow_id, name in s.execute(
            sa.select(FlowDoc.id, FlowDoc.name)
            .where(FlowDoc.org_id == org_id)
            .order_by(FlowDoc.name, FlowDoc.id)
        ):
            found.append(FlowChoice(f"{DB_PREFIX}{flow_id}", name, example=False))
    for name in example_flows():
        found.append(FlowChoice(f"{EXAMPLE_PREFIX}{name}", name, example=True))
    return found


def stored_form(flow: str | Path, *, allow_paths: bool) -> str:
    """What ``Campaign.flow_path`` keeps for a flow given as ``flow:<id>``,
    ``example:<file>`` or (``allow_paths``: the command line) a file path."""
    text = str(flow).strip()
    if not text:
        raise UnknownFlow("no flow given")
    if text.startswith(DB_PREFIX):
        return text
    if text.startswith(EXAMPLE_PREFIX):
        path = example_flows().get(text.removeprefix(EXAMPLE_PREFIX))
        if path is None:
            raise UnknownFlow(f"no example flow {text.removeprefix(EXAMPLE_PREFIX)!r}")
        return str(path)
    path = Path(text).resolve()
    if not allow_paths and path not in example_flows().values():
        raise UnknownFlow("a flow file can be named only on the command line")
    return str(path)


def read(s: Session, flow_path: str, org_id: str | None) -> tuple[Flow, str]:
    """The flow a campaign of ``org_id`` names (checked) and its YAML text. Raises
    ``UnknownFlow`` or ``FlowError``."""
    if flow_path.startswith(DB_PREFIX):
        flow_id = flow_path.removeprefix(DB_PREFIX)
        doc = None
        if org_id is not None:
            doc = s.scalars(
                sa.select(FlowDoc).where(FlowDoc.id == flow_id, FlowDoc.org_id == org_id)
            ).first()
        if doc is None:
            raise UnknownFlow(f"no flow {flow_id!r} in this organisation")
        return parse_flow(doc.yaml, source=flow_path), doc.yaml
    load_flow(flow_path)  # a missing, unreadable or oversized file: said as a FlowError
    try:
        text = Path(flow_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:  # changed between the two reads
        raise UnknownFlow(f"the flow {flow_path} cannot be read: {exc}") from None
    return parse_flow(text, source=flow_path), text  # the very text that is kept


def heard(s: Session, campaign: Campaign) -> Flow | None:
    """The flow a campaign's residents hear: the one frozen at its start, else the one it
    names now; None when neither can be read."""
    try:
        if campaign.flow_snapshot is not None:
            return parse_flow(campaign.flow_snapshot, source=campaign.flow_path)
        return read(s, campaign.flow_path, campaign.org_id)[0]
    except (FlowError, UnknownFlow):
        return None


def label(s: Session, flow_path: str) -> str:
    """A flow's name for people: the database flow's name, or the file name."""
    if flow_path.startswith(DB_PREFIX):
        name = s.scalar(sa.select(FlowDoc.name).where(FlowDoc.id == flow_path[len(DB_PREFIX) :]))
        return name or flow_path
    return Path(flow_path).name


def form_value(flow_path: str) -> str:
    """The form value (``choices``) of a stored flow: an example by its file name."""
    if flow_path.startswith(DB_PREFIX):
        return flow_path
    path = Path(flow_path)
    if example_flows().get(path.name) == path:
        return f"{EXAMPLE_PREFIX}{path.name}"
    return flow_path


__all__ = [
    "DB_PREFIX",
    "EXAMPLE_PREFIX",
    "FlowChoice",
    "FlowError",
    "UnknownFlow",
    "choices",
    "example_flows",
    "form_value",
    "label",
    "read",
    "stored_form",
]

"""The cluster page (admins): every telephony node of the installation, its state in words
(up, draining, down, stopped), the age of its heartbeat, its Asterisk version, calls in
progress, pacing, since when it drains and its last error — what ``ivr cluster status``
prints, from the same ``ivr.cluster.nodes.node_views``.

The nodes serve the whole installation, not one organisation: the page shows no
organisation's data (no campaign names, no numbers), only the nodes' health and load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, render_template
from flask_babel import gettext as _

from ivr.cluster.node_rules import NodeState, age_in_units
from ivr.cluster.nodes import NodeView, node_views
from ivr.store.db import reader_for, session_scope
from ivr.store.org_models import Role
from ivr.web.access import requires, services
from ivr.web.i18n import fmt_number

bp = Blueprint("cluster", __name__, url_prefix="/o/<org_id>/cluster")

# The state's CSS class (the word is always written out: colour is never the only sign).
STATE_CLASS = {
    NodeState.UP: "status-running",
    NodeState.DRAINING: "status-paused",
    NodeState.DOWN: "status-down",
    NodeState.STOPPED: "status-stopped",
}


@dataclass(frozen=True)
class NodeRow:
    view: NodeView
    state: str  # in words, in the page's language
    state_class: str
    age: str
    pacing: str


def state_name(state: NodeState) -> str:
    names = {
        NodeState.UP: _("Up"),
        NodeState.DRAINING: _("Draining"),
        NodeState.DOWN: _("Down"),
        NodeState.STOPPED: _("Stopped"),
    }
    return str(names[state])


def age_text(seconds: float) -> str:
    """How long ago the last heartbeat came: seconds, minutes, hours or days."""
    count, unit = age_in_units(seconds)
    n = fmt_number(count)
    if unit == "s":
        return str(_("%(count)s s ago", count=n))
    if unit == "min":
        return str(_("%(count)s min ago", count=n))
    if unit == "h":
        return str(_("%(count)s h ago", count=n))
    return str(_("%(count)s d ago", count=n))


def pacing_text(view: NodeView) -> str:
    if view.pacing is None:
        return str(_("No dialer"))
    return str(
        _(
            "%(rate)s calls/s (campaigns: %(campaigns)s)",
            rate=fmt_number(view.pacing),
            campaigns=fmt_number(view.campaigns_running),
        )
    )


@bp.route("/")
@requires(Role.ADMIN)
def index(org_id: str) -> Any:
    shared = services()
    timeout = shared.settings.cluster.node_timeout_seconds
    now = shared.clock()
    with session_scope(reader_for(shared.factory)) as s:
        views = node_views(s, now, timeout)
    rows = [
        NodeRow(v, state_name(v.state), STATE_CLASS[v.state], age_text(v.heartbeat_age),
                pacing_text(v))
        for v in views
    ]  # fmt: skip
    counts = {state: sum(1 for v in views if v.state is state) for state in NodeState}
    return render_template(
        "cluster/index.html",
        rows=rows,
        now=now,
        timeout=fmt_number(timeout),
        counts=[(state_name(state), n) for state, n in counts.items() if n],
        calls=sum(v.calls_in_progress for v in views if v.state is not NodeState.DOWN),
    )

"""`ivr cluster status [--json]`: every node of the cluster, its state (up, draining, down,
stopped), the age of its heartbeat, its Asterisk version, calls in progress, the pacing its
dialer allows now, since when it drains, and its last error.

Exit codes: 0 (whatever the nodes' states: the table says them), 2 a configuration problem.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from ivr.cluster.nodes import NodeView

COLUMNS = ("NODE", "STATE", "HEARTBEAT", "ASTERISK", "CALLS", "PACING", "DRAINING SINCE")


def add_status_parser(actions: Any) -> None:
    st = actions.add_parser(
        "status", help="each node's state, heartbeat, Asterisk version, load and draining"
    )
    st.add_argument("--json", action="store_true", help="the nodes as JSON")
    st.set_defaults(func=cmd_status)
    fg = actions.add_parser(
        "forget",
        help="remove a node taken out of the cluster for good from the view (down or stopped, "
        "nothing left in flight)",
    )
    fg.add_argument("node", help="the node's name, as `ivr cluster status` shows it")
    fg.set_defaults(func=cmd_forget)


def cmd_forget(args: argparse.Namespace) -> int:
    """Remove a decommissioned node's row: only when it is down or stopped and holds no
    attempt in flight and no active call (else another node must settle those first)."""
    import sys

    import sqlalchemy as sa

    from ivr.clock import system_clock
    from ivr.cluster.node_rules import NodeState
    from ivr.cluster.nodes import forget_node, node_views
    from ivr.config import load_settings
    from ivr.outcome import Outcome
    from ivr.store.db import in_transaction, make_engine, make_session_factory
    from ivr.store.migrate import check_current
    from ivr.store.models import Attempt, AttemptState, Call

    settings = load_settings()
    check_current(settings.database_url)
    engine = make_engine(settings.database_url)
    timeout = settings.cluster.node_timeout_seconds

    def forget(s: Any) -> str | None:
        views = {v.name: v for v in node_views(s, system_clock(), timeout)}
        view = views.get(args.node)
        if view is None:
            known = ", ".join(sorted(views)) or "none"
            return f"no node named {args.node!r} (known: {known})"
        if view.state not in (NodeState.DOWN, NodeState.STOPPED):
            return f"node {args.node} is {view.state.value}: stop its telephony worker first"
        in_flight = s.scalar(
            sa.select(sa.func.count())
            .select_from(Attempt)
            .where(Attempt.claimed_by == args.node, Attempt.state == AttemptState.DIALING)
        )
        active = s.scalar(
            sa.select(sa.func.count())
            .select_from(Call)
            .where(Call.node_name == args.node, Call.status == Outcome.ACTIVE)
        )
        if in_flight or active:
            return (
                f"node {args.node} still has {in_flight} attempt(s) in flight and {active} "
                f"active call(s): another node settles them {timeout:g} s after its last "
                "heartbeat (or start the node again); forget it after that"
            )
        forget_node(s, args.node)
        return None

    try:
        problem = in_transaction(make_session_factory(engine), forget)
    finally:
        engine.dispose()
    if problem is not None:
        print(f"ivr: error: {problem}", file=sys.stderr)
        return 2
    print(f"node {args.node} forgotten: it no longer shows in the cluster view", flush=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ivr.clock import system_clock
    from ivr.cluster.nodes import node_views
    from ivr.config import load_settings
    from ivr.store.db import make_engine, make_session_factory, reader_for, session_scope
    from ivr.store.migrate import check_current

    settings = load_settings()
    check_current(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        now = system_clock()
        timeout = settings.cluster.node_timeout_seconds
        with session_scope(reader_for(make_session_factory(engine))) as s:
            views = node_views(s, now, timeout)
    finally:
        engine.dispose()
    if args.json:
        print(
            json.dumps(
                {
                    "at": now.isoformat(),
                    "node_timeout_seconds": timeout,
                    "nodes": [v.as_json() for v in views],
                },
                indent=2,
            ),
            flush=True,
        )
    else:
        print(format_status(views, timeout), flush=True)
    return 0


def age_text(seconds: float) -> str:
    """``4 s ago``, ``3 min ago``, ``2 h ago``, ``5 d ago``."""
    from ivr.cluster.node_rules import age_in_units

    count, unit = age_in_units(seconds)
    return f"{count} {unit} ago"


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def pacing_text(view: NodeView) -> str:
    if view.pacing is None:
        return "no dialer"
    campaigns = f"{view.campaigns_running} campaign{'s' if view.campaigns_running != 1 else ''}"
    return f"{view.pacing:g} calls/s ({campaigns})"


def format_status(views: list[NodeView], timeout: float) -> str:
    """The nodes as a plain-text table, then each node's last error below it."""
    if not views:
        return (
            "no nodes yet: a telephony worker (`ivr telephony`) appears here once it has "
            "written its first heartbeat"
        )
    rows = [
        (
            v.name,
            v.state.value,
            age_text(v.heartbeat_age),
            v.asterisk_version or "-",
            str(v.calls_in_progress),
            pacing_text(v),
            _when(v.draining_since),
        )
        for v in views
    ]
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(COLUMNS), *(line(r) for r in rows)]
    counts: dict[str, int] = {}
    for v in views:
        counts[v.state.value] = counts.get(v.state.value, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    out.append("")
    out.append(
        f"{len(views)} node{'s' if len(views) != 1 else ''}: {summary} "
        f"(down: no heartbeat for over {timeout:g} s)"
    )
    errors = [v for v in views if v.last_error]
    if errors:
        out.append("")
        out.append("last errors:")
        out.extend(f"  {v.name} at {_when(v.last_error_at)}: {v.last_error}" for v in errors)
    return "\n".join(out)

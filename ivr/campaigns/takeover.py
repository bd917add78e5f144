"""Taking over the calls of a telephony node that is down (several nodes on one database).

A node whose worker (or whole machine) dies leaves campaign attempts in ``dialing`` and call
rows ``active``. When it restarts, its dialer reconciles them (``Dialer._reconcile``). When
it does not come back, the other nodes must: every dialer, at each refresh (every
``refresh_seconds``), asks the cluster view which nodes are down (no heartbeat for
``[cluster] node_timeout_seconds``, no clean shutdown; ``ivr.cluster.nodes``; or stopped
cleanly that long ago with attempts it could not settle),
adopts their attempts with a guarded UPDATE (``claimed_by = dead -> me``,
``ivr.store.campaigns.adopt_dialing``) and settles each exactly as its own restart would
(``Dialer.settle_stale``): a call that was up becomes ``interrupted`` and is retried as the
campaign's rules allow, an attempt claimed but never placed goes back to the queue unspent.
The dead node's other calls still marked active (inbound ones) end as interrupted.

Exactly once: the adoption and the settling are one transaction, and the UPDATE is guarded,
so of two surviving nodes (or a survivor and the dead node coming back) each attempt is
settled by exactly one; the node that comes back finds nothing of it left to reconcile.

Bounded: one small query of the nodes table per refresh, and at most ``BATCH`` attempts
per pass (the rest at the next refresh).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from ivr.cluster import nodes
from ivr.cluster.node_rules import NodeState
from ivr.outcome import Outcome
from ivr.store import campaigns as cstore
from ivr.store import repo

if TYPE_CHECKING:
    from ivr.campaigns.dialer import Dialer

log = logging.getLogger(__name__)

BATCH = 200  # attempts adopted per refresh at most


@dataclass(frozen=True)
class TakenOver:
    """What one pass took over from one node that is down."""

    node: str
    attempts: int
    calls: int  # its other calls still marked active, now interrupted


def gone_nodes(s: Session, now: datetime, timeout: float) -> list[str]:
    """The nodes whose leftovers another node settles: those that are down, and those that
    stopped cleanly longer than ``timeout`` ago (a clean stop that could not settle all its
    attempts leaves them to its next start; if it does not come back, to the others)."""
    return [
        view.name
        for view in nodes.node_views(s, now, timeout)
        if view.state is NodeState.DOWN
        or (view.state is NodeState.STOPPED and view.heartbeat_age > timeout)
    ]


def take_over(dialer: Dialer, s: Session, limit: int = BATCH) -> list[TakenOver]:
    """Settle, as ``dialer``'s node, what the nodes that are down left in flight."""
    timeout = dialer.node_timeout_seconds
    if timeout is None:
        return []
    now = dialer.clock()
    taken: list[TakenOver] = []
    for dead in gone_nodes(s, now, timeout):
        if dead == dialer.node or limit <= 0:
            continue
        attempts = cstore.adopt_dialing(s, owner=dead, node=dialer.node, limit=limit)
        more = len(attempts) == limit  # perhaps: the next pass goes on
        limit -= len(attempts)
        detail = f"node {dead} down (no heartbeat for {timeout:g} s): taken over by {dialer.node}"
        for attempt in attempts:
            dialer.settle_stale(s, attempt, detail)
        calls = 0
        if not more:  # its inbound calls (the campaign calls are settled above)
            for call in repo.active_calls(s, dead):
                calls += repo.end_call(s, call.id, Outcome.INTERRUPTED, at=now, reason=detail)
        if attempts or calls:
            dialer.taken_over += len(attempts)
            log.warning(
                "node %s is down (no heartbeat since before %s): took over %d attempt(s) in "
                "flight and %d other call(s)",
                dead,
                (now - timedelta(seconds=timeout)).isoformat(timespec="seconds"),
                len(attempts),
                calls,
            )
            taken.append(TakenOver(dead, len(attempts), calls))
    return taken

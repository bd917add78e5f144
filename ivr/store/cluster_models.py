"""The cluster's nodes: one row per telephony worker (``ivr telephony``), kept by its
heartbeat (``ivr.cluster.nodes``).

A worker writes its row every ``[cluster] heartbeat_seconds``: the Asterisk version it is
connected to, its calls in progress, the pacing its dialer allows now and its last error.
``draining`` is set by the operator (``ivr cluster drain NODE``) and only read by the
worker: a draining node claims no new campaign attempts while its live calls finish.
``stopped_at`` is written by a clean shutdown, so a node that left on purpose reads
"stopped" rather than "down".
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base


class ClusterNode(Base):
    __tablename__ = "cluster_nodes"
    __table_args__ = (
        sa.CheckConstraint("calls_in_progress >= 0 AND campaigns_running >= 0", name="counts"),
        sa.CheckConstraint("pacing IS NULL OR pacing >= 0", name="pacing"),
    )

    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    asterisk_version: Mapped[str | None] = mapped_column(sa.String(64))
    started_at: Mapped[datetime]  # when this run of the worker started
    heartbeat_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]  # a clean shutdown; None while running
    calls_in_progress: Mapped[int] = mapped_column(default=0)
    # Calls per second the node's dialer allows now (the sum over its running campaigns);
    # None: the node runs no dialer.
    pacing: Mapped[float | None]
    campaigns_running: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_error_at: Mapped[datetime | None]
    draining: Mapped[bool] = mapped_column(default=False)
    draining_since: Mapped[datetime | None]

"""Who did what: the acting person (or command) and the audit log.

Every service that changes something, or opens a recording, takes an ``Actor`` and writes
its audit entry in the same transaction as the change: a view cannot forget it, and an
entry never describes a change that was rolled back.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.store.org_models import AuditEntry, Role


class Forbidden(Exception):
    """The actor may not do this (wrong organisation or too low a role)."""


class NotFound(LookupError):
    """No such thing in the actor's organisation (another organisation's data is not found,
    never forbidden: its existence is not revealed)."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a logged-in user in one organisation, or the command line."""

    actor: str  # the user's e-mail, or "cli:<login>"
    user_id: str | None = None
    org_id: str | None = None
    role: Role | None = None
    address: str = ""  # the client's IP address

    @classmethod
    def cli(cls, org_id: str | None = None) -> Actor:
        """The command line: an operator with shell access to the installation."""
        try:
            login = getpass.getuser()
        except (KeyError, OSError):
            login = "unknown"
        return cls(actor=f"cli:{login}", org_id=org_id, role=Role.ADMIN)

    @property
    def is_cli(self) -> bool:
        return self.user_id is None

    def require(self, needed: Role, org_id: str | None = None) -> str:
        """The organisation the actor acts in, checking its role there; raises Forbidden."""
        org = org_id if org_id is not None else self.org_id
        if org is None or (self.org_id is not None and org != self.org_id and not self.is_cli):
            raise Forbidden("not a member of this organisation")
        if self.role is None or not self.role.allows(needed):
            raise Forbidden(f"needs the {needed.value} role")
        return org


def record(
    s: Session,
    actor: Actor,
    action: str,
    *,
    at: datetime,
    target_type: str = "",
    target_id: str = "",
    org_id: str | None = None,
    **detail: Any,
) -> None:
    """Add an audit entry to the session's transaction."""
    s.add(
        AuditEntry(
            at=at,
            org_id=org_id if org_id is not None else actor.org_id,
            user_id=actor.user_id,
            actor=actor.actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            detail=json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True),
            address=actor.address,
        )
    )


def entries(
    s: Session, org_id: str, *, before_id: int | None = None, limit: int = 50
) -> list[AuditEntry]:
    """The organisation's audit log, newest first (keyset pagination on the id)."""
    query = sa.select(AuditEntry).where(AuditEntry.org_id == org_id)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(s.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))


def target_names(s: Session, org_id: str, found: list[AuditEntry]) -> dict[tuple[str, str], str]:
    """Readable names of the entries' targets: a user's e-mail, the organisation's, a
    campaign's or a flow's name (only the organisation's own campaigns and flows)."""
    from ivr.store.models import Campaign
    from ivr.store.org_models import FlowDoc, Organisation, User

    wanted: dict[str, set[str]] = {}
    for entry in found:
        if entry.target_id:
            wanted.setdefault(entry.target_type, set()).add(entry.target_id)
    names: dict[tuple[str, str], str] = {}
    if org_id in wanted.get("organisation", ()):
        org = s.get(Organisation, org_id)
        if org is not None:
            names[("organisation", org_id)] = org.name
    if ids := wanted.get("user"):
        for uid, email in s.execute(sa.select(User.id, User.email).where(User.id.in_(ids))):
            names[("user", uid)] = email
    for kind, model in (("campaign", Campaign), ("flow", FlowDoc)):
        if ids := wanted.get(kind):
            query = sa.select(model.id, model.name).where(model.id.in_(ids), model.org_id == org_id)
            for tid, name in s.execute(query):
                names[(kind, tid)] = name
    return names

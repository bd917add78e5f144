"""The callback worklist's queries and changes, for the web UI (and any command) alike.

Everything is scoped to the actor's organisation (``CallbackRequest.org_id``): another
organisation's request is ``NotFound``. Every change writes a ``CallbackNote`` (the
history) and an audit entry in the same transaction, and is refused as ``Stale`` when the
request changed since the form was read (its ``version``), rather than overwriting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor, NotFound
from ivr.callbacks import rules
from ivr.callbacks.rules import Action, ChangeRefused
from ivr.clock import Clock
from ivr.store import repo
from ivr.store.db import reader_for
from ivr.store.models import Call, CallbackChannel, CallbackRequest, CallbackStatus, Campaign
from ivr.store.org_models import Membership, Role, User
from ivr.store.work_models import CallbackNote

PAGE_SIZE = 50
INBOUND = "inbound"  # the campaign filter's value for requests from inbound lines
STATUS_FILTERS = ("open", "all", *(s.value for s in CallbackStatus))
ASSIGNEE_FILTERS = ("", "mine", "none")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Stale(Exception):
    """The request changed since the form was read: nothing was saved."""


@dataclass(frozen=True)
class Filters:
    status: str = "open"  # "open" (new, assigned, contacted), "all", or one status
    channel: str = ""  # "" or a CallbackChannel value
    assignee: str = ""  # "" anyone, "mine", "none" (unassigned)
    campaign: str = ""  # "" any, a campaign id, or INBOUND
    overdue: bool = False


@dataclass(frozen=True)
class Item:
    id: int
    status: CallbackStatus
    channel: CallbackChannel
    time_window: str | None
    interpreter_language: str | None
    consent_version: str
    language: str
    campaign_id: str | None
    campaign_name: str | None
    line_number: str | None
    created_at: datetime
    age: timedelta
    overdue: bool
    assignee_id: str | None
    assignee_name: str | None


@dataclass(frozen=True)
class Page:
    items: list[Item]
    next_after: str | None  # the cursor of the next page, None on the last


@dataclass(frozen=True)
class Note:
    at: datetime
    actor: str
    text: str
    status: CallbackStatus | None


@dataclass(frozen=True)
class Detail:
    item: Item
    phone_number: str | None
    call_id: str
    resolution: str | None
    resolved_at: datetime | None
    updated_at: datetime | None
    version: str
    notes: list[Note]
    answers: list[tuple[str, str, str]]  # node id, kind, value
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Counts:
    """The pilot's measures for one campaign (or inbound lines; ``campaign_id`` None with
    ``overall`` False) or for all: received, contacted (reached: contacted or resolved),
    resolved, unreachable, open and overdue, of the requests received in the period."""

    campaign_id: str | None
    campaign_name: str | None
    received: int
    contacted: int
    resolved: int
    unreachable: int
    open: int
    overdue: int
    overall: bool = False


@dataclass(frozen=True)
class Member:
    user_id: str
    name: str
    email: str


def version_of(updated_at: datetime | None, created_at: datetime) -> str:
    """The request's version as a form carries it: microseconds of its last change."""
    when = updated_at or created_at
    return str((when - _EPOCH) // timedelta(microseconds=1))


def _cursor(item: Item) -> str:
    return f"{version_of(None, item.created_at)}.{item.id}"


def _parse_cursor(text: str) -> tuple[datetime, int] | None:
    micros, _, ident = text.partition(".")
    if not (micros.isdigit() and ident.isdigit()):
        return None
    return _EPOCH + timedelta(microseconds=int(micros)), int(ident)


class CallbackService:
    def __init__(self, factory: sessionmaker[Session], clock: Clock, overdue_hours: int) -> None:
        self.factory = factory
        self.reader = reader_for(factory)
        self.clock = clock
        self.overdue_hours = overdue_hours

    # ------------------------------------------------------------------ queries
    def _select(self) -> sa.Select[tuple[CallbackRequest, str, str | None, str]]:
        return (
            sa.select(
                CallbackRequest,
                Campaign.name,
                Call.line_number,
                sa.func.coalesce(sa.func.nullif(User.name, ""), User.email),
            )
            .join(Call, Call.id == CallbackRequest.call_id)
            .outerjoin(Campaign, Campaign.id == CallbackRequest.campaign_id)
            .outerjoin(User, User.id == CallbackRequest.assigned_to)
        )

    def _item(
        self, row: CallbackRequest, campaign: str | None, line: str | None, who: str | None
    ) -> Item:
        now = self.clock()
        return Item(
            id=row.id,
            status=row.status,
            channel=row.channel,
            time_window=row.time_window,
            interpreter_language=row.interpreter_language,
            consent_version=row.consent_version,
            language=row.language,
            campaign_id=row.campaign_id,
            campaign_name=campaign,
            line_number=line,
            created_at=row.created_at,
            age=rules.age(row.created_at, now),
            overdue=rules.is_overdue(row.status, row.created_at, now, self.overdue_hours),
            assignee_id=row.assigned_to,
            assignee_name=who,
        )

    def worklist(
        self, actor: Actor, filters: Filters, after: str = "", limit: int | None = None
    ) -> Page:
        """A page of the organisation's requests, oldest first (the longest waiting on top),
        after the cursor ``after`` (keyset: created_at, id)."""
        org_id = actor.require(Role.REVIEWER)
        limit = limit or PAGE_SIZE
        query = self._select().where(CallbackRequest.org_id == org_id)
        if filters.status == "open":
            query = query.where(CallbackRequest.status.in_(rules.OPEN))
        elif filters.status in {s.value for s in CallbackStatus}:
            query = query.where(CallbackRequest.status == CallbackStatus(filters.status))
        if filters.channel in {c.value for c in CallbackChannel}:
            query = query.where(CallbackRequest.channel == CallbackChannel(filters.channel))
        if filters.assignee == "mine":
            query = query.where(CallbackRequest.assigned_to == (actor.user_id or ""))
        elif filters.assignee == "none":
            query = query.where(CallbackRequest.assigned_to.is_(None))
        if filters.campaign == INBOUND:
            query = query.where(CallbackRequest.campaign_id.is_(None))
        elif filters.campaign:
            query = query.where(CallbackRequest.campaign_id == filters.campaign)
        if filters.overdue:
            cutoff = rules.overdue_cutoff(self.clock(), self.overdue_hours)
            query = query.where(
                CallbackRequest.status.in_(rules.WAITING), CallbackRequest.created_at <= cutoff
            )
        position = _parse_cursor(after) if after else None
        if position is not None:
            at, ident = position
            query = query.where(
                sa.or_(
                    CallbackRequest.created_at > at,
                    sa.and_(CallbackRequest.created_at == at, CallbackRequest.id > ident),
                )
            )
        query = query.order_by(CallbackRequest.created_at, CallbackRequest.id).limit(limit + 1)
        with self.reader() as s:
            rows = s.execute(query).all()
        items = [self._item(*row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items, _cursor(items[-1]) if more and items else None)

    def detail(self, actor: Actor, request_id: int) -> Detail:
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            row = s.execute(
                self._select().where(
                    CallbackRequest.id == request_id, CallbackRequest.org_id == org_id
                )
            ).first()
            if row is None:
                raise NotFound("no such callback request in this organisation")
            request = row[0]
            notes = [
                Note(n.at, n.actor, n.text, n.status)
                for n in s.scalars(
                    sa.select(CallbackNote)
                    .where(CallbackNote.request_id == request.id)
                    .order_by(CallbackNote.at, CallbackNote.id)
                )
            ]
            answers = [
                (a.node_id, str(a.kind), a.value)
                for a in repo.latest_answers(s, request.call_id).values()
            ]
            return Detail(
                item=self._item(*row),
                phone_number=request.phone_number,
                call_id=request.call_id,
                resolution=request.resolution,
                resolved_at=request.resolved_at,
                updated_at=request.updated_at,
                version=version_of(request.updated_at, request.created_at),
                notes=notes,
                answers=answers,
                actions=rules.allowed_actions(request.status),
            )

    def members(self, actor: Actor) -> list[Member]:
        """Who a request can be assigned to: the organisation's active members."""
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            rows = s.execute(
                sa.select(User.id, User.name, User.email)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.org_id == org_id, User.disabled.is_(False))
                .order_by(User.name, User.email)
            ).all()
        return [Member(*row) for row in rows]

    def campaigns(self, actor: Actor) -> list[tuple[str, str]]:
        """The organisation's campaigns (id, name) for the campaign filter."""
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            rows = s.execute(
                sa.select(Campaign.id, Campaign.name)
                .where(Campaign.org_id == org_id)
                .order_by(Campaign.name)
            ).all()
        return [(cid, name) for cid, name in rows]

    def counts(
        self, actor: Actor, since: datetime | None = None, until: datetime | None = None
    ) -> list[Counts]:
        """The measures per campaign (inbound lines as one row, campaign None), then the
        overall row, of the requests received in [since, until)."""
        org_id = actor.require(Role.REVIEWER)
        cutoff = rules.overdue_cutoff(self.clock(), self.overdue_hours)
        status = CallbackRequest.status

        def total(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
            return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

        query = (
            sa.select(
                CallbackRequest.campaign_id,
                Campaign.name,
                sa.func.count(CallbackRequest.id),
                total(status.in_((CallbackStatus.CONTACTED, CallbackStatus.RESOLVED))),
                total(status == CallbackStatus.RESOLVED),
                total(status == CallbackStatus.UNREACHABLE),
                total(status.in_(rules.OPEN)),
                total(sa.and_(status.in_(rules.WAITING), CallbackRequest.created_at <= cutoff)),
            )
            .outerjoin(Campaign, Campaign.id == CallbackRequest.campaign_id)
            .where(CallbackRequest.org_id == org_id)
            .group_by(CallbackRequest.campaign_id, Campaign.name)
            .order_by(Campaign.name)
        )
        if since is not None:
            query = query.where(CallbackRequest.created_at >= since)
        if until is not None:
            query = query.where(CallbackRequest.created_at < until)
        with self.reader() as s:
            found = s.execute(query).all()
        rows = [
            Counts(cid, name, int(a), int(b), int(c), int(d), int(e), int(f))
            for cid, name, a, b, c, d, e, f in found
        ]
        overall = Counts(
            None,
            None,
            received=sum(r.received for r in rows),
            contacted=sum(r.contacted for r in rows),
            resolved=sum(r.resolved for r in rows),
            unreachable=sum(r.unreachable for r in rows),
            open=sum(r.open for r in rows),
            overdue=sum(r.overdue for r in rows),
            overall=True,
        )
        return [*rows, overall]

    # ------------------------------------------------------------------ changes
    def change(
        self,
        actor: Actor,
        request_id: int,
        action: Action | str,
        *,
        version: str,
        note: str = "",
        resolution: str = "",
        assignee: str | None = None,
    ) -> CallbackStatus:
        """Apply ``action`` (rules.plan decides); the status afterwards. Raises NotFound,
        ChangeRefused (field -> problem), or Stale (changed since ``version`` was read)."""
        org_id = actor.require(Role.REVIEWER)
        try:
            act = Action(action)
        except ValueError:
            raise ChangeRefused({"action": "not_allowed"}) from None
        with self.factory.begin() as s:
            request = s.scalars(
                sa.select(CallbackRequest).where(
                    CallbackRequest.id == request_id, CallbackRequest.org_id == org_id
                )
            ).first()
            if request is None:
                raise NotFound("no such callback request in this organisation")
            old = request.updated_at
            if version != version_of(old, request.created_at):
                raise Stale("the request changed since the form was read")
            target = None
            if act is Action.ASSIGN:
                target = actor.user_id if assignee == "me" else (assignee or None)
                if target is not None and not self._is_member(s, org_id, target):
                    raise ChangeRefused({"assignee": "unknown"})
            change = rules.plan(
                request.status,
                act,
                note=note,
                resolution=resolution,
                assignee=target,
                has_assignee=request.assigned_to is not None,
            )
            now = self.clock()
            stamp = now if old is None or now > old else old + timedelta(microseconds=1)
            values: dict[str, object] = {"updated_at": stamp}
            after = change.status or request.status
            if change.status is not None:
                values["status"] = change.status
            if act is Action.ASSIGN:
                values["assigned_to"] = target
            if change.ends:
                values["resolution"] = change.resolution
                values["resolved_at"] = now
            if change.reopens:
                values["resolution"] = None
                values["resolved_at"] = None
            guard = (
                CallbackRequest.updated_at.is_(None)
                if old is None
                else CallbackRequest.updated_at == old
            )
            done = s.execute(
                sa.update(CallbackRequest)
                .where(CallbackRequest.id == request.id, guard)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Stale("the request changed while it was being saved")
            text = change.resolution if change.ends else note.strip()
            s.add(
                CallbackNote(
                    request_id=request.id,
                    user_id=actor.user_id,
                    actor=actor.actor,
                    at=now,
                    text=text or "",
                    status=change.status,
                )
            )
            detail: dict[str, str | None] = {"status_before": request.status.value}
            detail["status"] = after.value
            if act is Action.ASSIGN:
                detail["assigned_to"] = target
            audit.record(
                s,
                actor,
                f"callback.{act.value}",
                at=now,
                target_type="callback_request",
                target_id=str(request.id),
                **detail,
            )
        return after

    @staticmethod
    def _is_member(s: Session, org_id: str, user_id: str) -> bool:
        found = s.execute(
            sa.select(Membership.user_id)
            .join(User, User.id == Membership.user_id)
            .where(
                Membership.org_id == org_id,
                Membership.user_id == user_id,
                User.disabled.is_(False),
            )
        ).first()
        return found is not None

"""Report schedules of an organisation (managers and admins), their send history, and the
due-runner the job worker calls every minute (``run_due``).

Every object is scoped by the actor's organisation: another organisation's schedule is
``NotFound``. Changes are audited in the same transaction (``schedule.create``,
``schedule.update``, ``schedule.enable``, ``schedule.disable``, ``schedule.delete``,
``schedule.send_now``).

The runner: a schedule is due when ``next_run_at <= now``. A runner claims it with
``UPDATE ... SET next_run_at = <the next run after now> WHERE id = :id AND next_run_at =
<the value it read>``: of two runners at once (two workers, or a worker and its retry) one
updates a row, the other none and skips, so a run is sent once. A run missed while no
worker ran is sent once when one starts, not once per missed run. Each run is a
``ScheduleSend`` row: a failed try is tried again after ``rules.RETRY_MINUTES`` (claimed the
same way, on ``retry_at``), then marked failed; a try whose worker died (``sending`` for
longer than ``STALE``) is taken over. Every try is recorded and shown in the UI.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from email.message import EmailMessage

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor, NotFound
from ivr.clock import Clock
from ivr.config import SmtpSettings
from ivr.mail import MailError, Sent, send_message
from ivr.reports.build import line_report
from ivr.reports.cache import cached_report
from ivr.reports.model import CampaignReport, LineReport
from ivr.schedules import rules
from ivr.schedules.render import Contents, Renderer, message
from ivr.store.db import reader_for
from ivr.store.models import Campaign, CampaignStatus
from ivr.store.org_models import InboundLine, Organisation, Role
from ivr.store.schedule_models import ReportSchedule, ScheduleFrequency, ScheduleSend, SendStatus

log = logging.getLogger(__name__)

ROLE = Role.MANAGER
ALL = "all"  # the scope "all campaigns and lines of the organisation"
STALE = timedelta(minutes=15)  # a try still "sending" this long: its worker died
HISTORY = 50

Sender = Callable[[SmtpSettings, EmailMessage], Sent]


class ScheduleError(ValueError):
    """The form's values are not valid; ``codes``: field -> code (``rules.check``, and
    ``scope``: choice)."""

    def __init__(self, codes: dict[str, str], bad_recipients: tuple[str, ...] = ()) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in codes.items()))
        self.codes = codes
        self.bad_recipients = bad_recipients


@dataclass(frozen=True, slots=True)
class ScheduleForm:
    """A schedule as typed into the form (strings, checked by the service)."""

    name: str
    frequency: str
    day: str
    time: str
    scope: str  # ALL or a campaign id
    recipients: str
    language: str


@dataclass(frozen=True, slots=True)
class ScheduleView:
    id: str
    name: str
    frequency: str
    day: int
    at: time
    scope: str  # ALL or the campaign id
    campaign_name: str | None
    recipients: tuple[str, ...]
    language: str
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: str | None  # of the latest send

    def form(self) -> ScheduleForm:
        return ScheduleForm(self.name, self.frequency, str(self.day), self.at.strftime("%H:%M"),
                            self.scope, "\n".join(self.recipients), self.language)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SendView:
    id: int
    run_at: datetime
    manual: bool
    at: datetime
    status: str
    attempts: int
    retry_at: datetime | None
    error: str | None
    recipients: tuple[str, ...]
    message_id: str | None


def _default_renderer() -> Renderer:
    from ivr.web.schedule_mail import render  # the UI's templates and catalogues

    return render


class Schedules:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock,
        smtp: SmtpSettings,
        *,
        renderer: Renderer | None = None,
        sender: Sender = send_message,
    ) -> None:
        self.factory = factory
        self.reader = reader_for(factory)
        self.clock = clock
        self.smtp = smtp
        self._renderer = renderer
        self.sender = sender

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = _default_renderer()
        return self._renderer

    # ----------------------------------------------------------------- reading
    @staticmethod
    def _row(s: Session, actor: Actor, schedule_id: str) -> ReportSchedule:
        org_id = actor.require(ROLE)
        row = s.get(ReportSchedule, schedule_id)
        if row is None or row.org_id != org_id:
            raise NotFound("schedule")
        return row

    def campaigns(self, actor: Actor) -> list[tuple[str, str]]:
        """The campaigns a schedule may cover: (id, name), by name."""
        org_id = actor.require(ROLE)
        with self.factory() as s:
            rows = s.execute(
                sa.select(Campaign.id, Campaign.name)
                .where(Campaign.org_id == org_id)
                .order_by(Campaign.name)
            ).all()
        return [(r[0], r[1]) for r in rows]

    def all(self, actor: Actor) -> list[ScheduleView]:
        org_id = actor.require(ROLE)
        with self.factory() as s:
            rows = s.scalars(
                sa.select(ReportSchedule)
                .where(ReportSchedule.org_id == org_id)
                .order_by(ReportSchedule.name, ReportSchedule.id)
            ).all()
            return [self._view(s, row) for row in rows]

    def get(self, actor: Actor, schedule_id: str) -> ScheduleView:
        with self.factory() as s:
            return self._view(s, self._row(s, actor, schedule_id))

    def history(self, actor: Actor, schedule_id: str, limit: int = HISTORY) -> list[SendView]:
        """The schedule's sends, newest first."""
        with self.factory() as s:
            row = self._row(s, actor, schedule_id)
            sends = s.scalars(
                sa.select(ScheduleSend)
                .where(ScheduleSend.schedule_id == row.id)
                .order_by(ScheduleSend.at.desc(), ScheduleSend.id.desc())
                .limit(limit)
            ).all()
            return [_send_view(send) for send in sends]

    @staticmethod
    def _view(s: Session, row: ReportSchedule) -> ScheduleView:
        name = s.get(Campaign, row.campaign_id).name if row.campaign_id else None  # type: ignore[union-attr]
        last = s.scalar(
            sa.select(ScheduleSend.status)
            .where(ScheduleSend.schedule_id == row.id)
            .order_by(ScheduleSend.at.desc(), ScheduleSend.id.desc())
            .limit(1)
        )
        return ScheduleView(
            id=row.id, name=row.name, frequency=str(row.frequency), day=row.day,
            at=time(row.hour, row.minute), scope=row.campaign_id or ALL, campaign_name=name,
            recipients=tuple(json.loads(row.recipients)), language=row.language,
            enabled=row.enabled, next_run_at=row.next_run_at, last_run_at=row.last_run_at,
            last_status=str(last) if last is not None else None,
        )  # fmt: skip

    # ----------------------------------------------------------------- changing
    def _checked(
        self, s: Session, org_id: str, form: ScheduleForm
    ) -> tuple[rules.Checked, str | None]:
        checked = rules.check(
            name=form.name, frequency=form.frequency, day=form.day, at=form.time,
            recipients=form.recipients, language=form.language,
        )  # fmt: skip
        codes = dict(checked.codes)
        campaign_id: str | None = None
        if form.scope != ALL:
            campaign = s.get(Campaign, form.scope) if form.scope else None
            if campaign is None or campaign.org_id != org_id:
                codes["scope"] = "choice"
            else:
                campaign_id = campaign.id
        if codes:
            raise ScheduleError(codes, checked.bad_recipients)
        return checked, campaign_id

    def _apply(self, s: Session, row: ReportSchedule, checked: rules.Checked,
               campaign_id: str | None, now: datetime) -> None:  # fmt: skip
        assert checked.frequency is not None and checked.day is not None and checked.at
        row.name = checked.name
        row.frequency = ScheduleFrequency(checked.frequency.value)
        row.day = checked.day
        row.hour, row.minute = checked.at.hour, checked.at.minute
        row.campaign_id = campaign_id
        row.recipients = json.dumps(checked.recipients)
        row.language = checked.language
        row.updated_at = now
        row.next_run_at = self._next(s, row, now) if row.enabled else None

    @staticmethod
    def _next(s: Session, row: ReportSchedule, after: datetime) -> datetime:
        zone = s.scalar(sa.select(Organisation.timezone).where(Organisation.id == row.org_id))
        rule = rules.Rule(rules.Frequency(str(row.frequency)), row.day,
                          time(row.hour, row.minute), zone or "Europe/Helsinki")  # fmt: skip
        return rules.next_run(rule, after)

    def create(self, actor: Actor, form: ScheduleForm) -> ScheduleView:
        org_id = actor.require(ROLE)
        now = self.clock()
        with self.factory.begin() as s:
            checked, campaign_id = self._checked(s, org_id, form)
            row = ReportSchedule(org_id=org_id, enabled=True, created_at=now)
            self._apply(s, row, checked, campaign_id, now)
            s.add(row)
            s.flush()
            audit.record(s, actor, "schedule.create", at=now, target_type="schedule",
                         target_id=row.id, name=row.name, scope=campaign_id or ALL,
                         recipients=len(checked.recipients))  # fmt: skip
            return self._view(s, row)

    def update(self, actor: Actor, schedule_id: str, form: ScheduleForm) -> ScheduleView:
        now = self.clock()
        with self.factory.begin() as s:
            row = self._row(s, actor, schedule_id)
            checked, campaign_id = self._checked(s, row.org_id, form)
            self._apply(s, row, checked, campaign_id, now)
            audit.record(s, actor, "schedule.update", at=now, target_type="schedule",
                         target_id=row.id, name=row.name, scope=campaign_id or ALL,
                         recipients=len(checked.recipients))  # fmt: skip
            return self._view(s, row)

    def set_enabled(self, actor: Actor, schedule_id: str, enabled: bool) -> ScheduleView:
        now = self.clock()
        with self.factory.begin() as s:
            row = self._row(s, actor, schedule_id)
            if row.enabled != enabled:
                row.enabled = enabled
                row.next_run_at = self._next(s, row, now) if enabled else None
                row.updated_at = now
                action = "schedule.enable" if enabled else "schedule.disable"
                audit.record(s, actor, action, at=now, target_type="schedule", target_id=row.id)
            return self._view(s, row)

    def delete(self, actor: Actor, schedule_id: str) -> None:
        now = self.clock()
        with self.factory.begin() as s:
            row = self._row(s, actor, schedule_id)
            audit.record(s, actor, "schedule.delete", at=now, target_type="schedule",
                         target_id=row.id, name=row.name)  # fmt: skip
            s.execute(sa.delete(ScheduleSend).where(ScheduleSend.schedule_id == row.id))
            s.delete(row)

    def send_now(self, actor: Actor, schedule_id: str) -> SendView:
        """Send the schedule's report now (as a run of its own; the schedule's next run
        stays); the send as it ended (sent, or retrying after a failure)."""
        now = self.clock()
        with self.factory.begin() as s:
            row = self._row(s, actor, schedule_id)
            send = ScheduleSend(schedule_id=row.id, org_id=row.org_id, run_at=now, manual=True,
                                at=now, status=SendStatus.SENDING, attempts=0,
                                recipients=row.recipients)  # fmt: skip
            s.add(send)
            s.flush()
            audit.record(s, actor, "schedule.send_now", at=now, target_type="schedule",
                         target_id=row.id, send_id=send.id)  # fmt: skip
            send_id = send.id
        self.deliver(send_id)
        with self.factory() as s:
            found = s.get(ScheduleSend, send_id)
            assert found is not None
            return _send_view(found)

    # ----------------------------------------------------------------- the runner
    def run_due(self, *, limit: int = 100) -> list[int]:
        """Send what is due now: scheduled runs, retries, tries whose worker died. The
        sends tried, by id."""
        tried = []
        for send_id in self._claim_runs(limit) + self._claim_retries(limit):
            self.deliver(send_id)
            tried.append(send_id)
        return tried

    def _claim_runs(self, limit: int) -> list[int]:
        now = self.clock()
        with self.factory() as s:
            due = s.execute(
                sa.select(ReportSchedule.id, ReportSchedule.next_run_at)
                .where(ReportSchedule.enabled.is_(True), ReportSchedule.next_run_at <= now)
                .order_by(ReportSchedule.next_run_at)
                .limit(limit)
            ).all()
        claimed = []
        for schedule_id, seen in due:
            with self.factory.begin() as s:
                row = s.get(ReportSchedule, schedule_id)
                if row is None:
                    continue
                following = self._next(s, row, max(now, seen))
                moved = s.execute(
                    sa.update(ReportSchedule)
                    .where(ReportSchedule.id == schedule_id, ReportSchedule.next_run_at == seen,
                           ReportSchedule.enabled.is_(True))
                    .values(next_run_at=following, last_run_at=seen)
                    .execution_options(synchronize_session=False)
                )  # fmt: skip
                if moved.rowcount != 1:  # type: ignore[attr-defined]  # another runner took it
                    continue
                send = ScheduleSend(schedule_id=schedule_id, org_id=row.org_id, run_at=seen,
                                    manual=False, at=now, status=SendStatus.SENDING,
                                    attempts=0, recipients=row.recipients)  # fmt: skip
                s.add(send)
                s.flush()
                claimed.append(send.id)
        return claimed

    def _claim_retries(self, limit: int) -> list[int]:
        now = self.clock()
        with self.factory() as s:
            waiting = s.execute(
                sa.select(ScheduleSend.id, ScheduleSend.status, ScheduleSend.retry_at,
                          ScheduleSend.at)
                .where(sa.or_(
                    sa.and_(ScheduleSend.status == SendStatus.RETRYING,
                            ScheduleSend.retry_at <= now),
                    sa.and_(ScheduleSend.status == SendStatus.SENDING,
                            ScheduleSend.at <= now - STALE),
                ))
                .order_by(ScheduleSend.id)
                .limit(limit)
            ).all()  # fmt: skip
        claimed = []
        for send_id, status, retry_at, at in waiting:
            guard = (
                ScheduleSend.retry_at == retry_at
                if status == SendStatus.RETRYING
                else ScheduleSend.at == at
            )
            with self.factory.begin() as s:
                moved = s.execute(
                    sa.update(ScheduleSend)
                    .where(ScheduleSend.id == send_id, ScheduleSend.status == status, guard)
                    .values(status=SendStatus.SENDING, at=now, retry_at=None)
                    .execution_options(synchronize_session=False)
                )
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(send_id)
        return claimed

    def deliver(self, send_id: int) -> str:
        """One try of a claimed send (status ``sending``): render, send, record. The
        status it ended in."""
        error: str | None = None
        sent: Sent | None = None
        try:
            contents, recipients = self._contents(send_id)
            rendered = self.renderer(contents)
            sent = self.sender(self.smtp, message(rendered, recipients, at=self.clock()))
        except MailError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - recorded and retried, never lost
            log.exception("send %s: the report could not be made", send_id)
            error = f"the report could not be made ({type(exc).__name__})"
        now = self.clock()
        with self.factory.begin() as s:
            send = s.get(ScheduleSend, send_id)
            if send is None:  # the schedule was deleted meanwhile
                return "deleted"
            send.attempts += 1
            send.at = now
            if sent is not None:
                send.status = SendStatus.SENT
                send.message_id = sent.message_id[:255]
                send.retry_at = None
                send.error = (
                    f"the server refused: {', '.join(sent.refused)}" if sent.refused else None
                )
            else:
                delay = rules.retry_delay(send.attempts)
                send.error = error
                send.status = SendStatus.RETRYING if delay else SendStatus.FAILED
                send.retry_at = now + delay if delay else None
                log.warning("report schedule %s, send %s, try %d failed%s: %s",
                            send.schedule_id, send_id, send.attempts,
                            f"; next try at {send.retry_at:%Y-%m-%d %H:%M} UTC" if delay else
                            "; giving up", error)  # fmt: skip
            return str(send.status)

    def _contents(self, send_id: int) -> tuple[Contents, list[str]]:
        with self.factory() as s:
            send = s.get(ScheduleSend, send_id)
            if send is None:
                raise NotFound("send")
            row = s.get(ReportSchedule, send.schedule_id)
            org = s.get(Organisation, send.org_id)
            if row is None or org is None or row.org_id != org.id:
                raise NotFound("schedule")
            if row.campaign_id is not None:
                campaign_ids = [row.campaign_id]
                line_ids: list[str] = []
            else:
                campaign_ids = list(s.scalars(
                    sa.select(Campaign.id)
                    .where(Campaign.org_id == org.id, Campaign.status != CampaignStatus.DRAFT)
                    .order_by(Campaign.name)
                ))  # fmt: skip
                line_ids = list(s.scalars(
                    sa.select(InboundLine.id).where(InboundLine.org_id == org.id)
                    .order_by(InboundLine.number)
                ))  # fmt: skip
            language, name, tz = row.language, row.name, org.timezone
            recipients = json.loads(send.recipients)
            run_at = send.run_at
        campaigns: list[CampaignReport] = []
        for cid in campaign_ids:
            campaigns.append(cached_report(self.factory, cid, clock=self.clock, language=language))
        lines: list[LineReport] = []
        with self.reader() as s:
            for lid in line_ids:
                lines.append(line_report(s, lid, language=language))
        contents = Contents(org.name, name, campaigns, lines, language, tz, run_at)
        return contents, recipients


def _send_view(send: ScheduleSend) -> SendView:
    return SendView(
        id=send.id, run_at=send.run_at, manual=send.manual, at=send.at, status=str(send.status),
        attempts=send.attempts, retry_at=send.retry_at, error=send.error,
        recipients=tuple(json.loads(send.recipients)), message_id=send.message_id,
    )  # fmt: skip

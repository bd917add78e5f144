"""Campaign administration: the one set of campaign services that the staff web UI and the
``ivr campaign`` command both call (create, edit, import contacts, start, pause, resume,
stop, status, the list and the live progress). The telephony worker's dialer does the
calling; this only changes what is in the database.

Every method takes the ``Actor`` who acts and finds the campaign by id (or by name) *within
the actor's organisation*: another organisation's campaign is ``NotFound``, never
forbidden. Changes need the manager role, reads the reviewer role; the command line acts
as ``Actor.cli(org_id)``, and ``Actor.cli(None)`` acts on the campaigns of no organisation
only. Every change writes its audit entry in the same transaction as the change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor, Forbidden, NotFound
from ivr.campaigns import admin_flows, admin_queries
from ivr.campaigns.admin_checks import CampaignSettings, Checked, check_settings
from ivr.campaigns.contacts import ContactFileError, read_contacts
from ivr.campaigns.errors import (
    FINAL,
    FLOW_UNUSABLE,
    FROZEN,
    INVALID_FLOW,
    NO_CONTACTS,
    NOT_NOW,
    PAUSE_FIRST,
    TAKEN,
    UNKNOWN_FLOW,
    CampaignAdminError,
    CampaignInvalid,
    FieldProblem,
)
from ivr.clock import Clock
from ivr.flows.loader import FlowError
from ivr.store import campaigns as cstore
from ivr.store.db import in_transaction, reader_for
from ivr.store.models import Campaign, CampaignStatus, Contact
from ivr.store.org_models import Role

__all__ = [
    "CampaignAdmin",
    "CampaignSettings",
    "Created",
    "as_json",
    "format_status",
]

UNREADABLE_FILE: Final = "unreadable_file"
# What may change in each state (``update`` enforces it; the edit page shows it):
# - a draft: everything;
# - paused or completed (it has run): everything but the flow, frozen into the campaign at
#   its start so that every resident hears the same questions and the answers compare;
# - running: nothing (pause it first: the dialer works from the settings it read);
# - stopped: nothing (final).
EDITABLE_STATES: Final = frozenset(
    {CampaignStatus.DRAFT, CampaignStatus.PAUSED, CampaignStatus.COMPLETED}
)


@dataclass(frozen=True)
class Created:
    id: str
    name: str
    warnings: list[str]  # e.g. a foreign-looking caller ID


def _scope(actor: Actor, needed: Role) -> str | None:
    """The organisation whose campaigns the actor may touch with role ``needed``; None:
    the command line without an organisation (campaigns of no organisation only)."""
    if actor.is_cli and actor.org_id is None:
        if actor.role is None or not actor.role.allows(needed):
            raise Forbidden(f"needs the {needed.value} role")
        return None
    return actor.require(needed)


def _in_scope(org_id: str | None) -> sa.ColumnElement[bool]:
    return Campaign.org_id.is_(None) if org_id is None else Campaign.org_id == org_id


def _find(s: Session, org_id: str | None, ref: str, *, lock: bool = False) -> Campaign:
    """The campaign ``ref`` (an id, else a name) of organisation ``org_id`` only."""
    for column in (Campaign.id, Campaign.name):
        query = sa.select(Campaign).where(column == ref, _in_scope(org_id))
        if lock:
            query = query.with_for_update()
        found = s.scalars(query).first()
        if found is not None:
            return found
    where = "" if org_id is not None else " (of no organisation: give --org for others)"
    raise NotFound(f"no campaign named {ref!r}{where}")


def _record(s: Session, actor: Actor, campaign: Campaign, action: str, at: datetime,
            **detail: Any) -> None:  # fmt: skip
    audit.record(
        s, actor, f"campaign.{action}", at=at, org_id=campaign.org_id,
        target_type="campaign", target_id=campaign.id, name=campaign.name, **detail,
    )  # fmt: skip


def _settings_of(campaign: Campaign) -> CampaignSettings:
    return CampaignSettings(
        **{
            f.name: (
                getattr(campaign, f.name).value
                if f.name == "default_language"
                else getattr(campaign, f.name)
            )
            for f in fields(CampaignSettings)
        }
    )


class CampaignAdmin:
    def __init__(self, factory: sessionmaker[Session], clock: Clock) -> None:
        self.factory = factory
        self.reader = reader_for(factory)  # reads take no write lock
        self.clock = clock  # the App's one clock, shared with the dialer

    # ------------------------------------------------------------------ checks
    def _check(
        self,
        s: Session,
        actor: Actor,
        org_id: str | None,
        name: str,
        flow: str | Path | None,
        settings: CampaignSettings,
        *,
        campaign: Campaign | None = None,
    ) -> tuple[Checked, str | None]:
        """Every problem of the settings at once (``CampaignInvalid``), else the checked
        values and the flow's stored form (None: the flow is not changed)."""
        checked = check_settings(name, settings)
        problems = list(checked.problems)
        clean = checked.name
        if clean and (campaign is None or clean != campaign.name):
            taken = sa.select(Campaign.id).where(Campaign.name == clean, _in_scope(org_id))
            if s.scalar(taken) is not None:
                problems.append(
                    FieldProblem("name", TAKEN, f"a campaign named {clean!r} exists already")
                )
        stored: str | None = None
        if campaign is not None and flow is not None and str(flow) == campaign.flow_path:
            flow = None  # as it is (also a flow file the command line named)
        if flow is not None:
            try:
                stored = admin_flows.stored_form(flow, allow_paths=actor.is_cli)
            except admin_flows.UnknownFlow as exc:
                problems.append(FieldProblem("flow", UNKNOWN_FLOW, str(exc)))
            if campaign is not None and stored == campaign.flow_path:
                stored = None  # unchanged
            elif stored is not None and campaign is not None and campaign.started_at:
                problems.append(
                    FieldProblem(
                        "flow", FROZEN, "the flow cannot change once the campaign has started"
                    )
                )
                stored = None
            elif stored is not None:
                try:
                    admin_flows.read(s, stored, org_id)
                except admin_flows.UnknownFlow as exc:
                    problems.append(FieldProblem("flow", UNKNOWN_FLOW, str(exc)))
                except FlowError as exc:
                    problems.append(FieldProblem("flow", INVALID_FLOW, str(exc)))
        if problems:
            raise CampaignInvalid(problems, name)
        return checked, stored

    def check(
        self,
        actor: Actor,
        name: str,
        flow: str | Path | None,
        settings: CampaignSettings,
        *,
        campaign_id: str | None = None,
    ) -> list[str]:
        """What ``create`` (or ``update`` of ``campaign_id``) would say, changing nothing:
        the warnings, or ``CampaignInvalid`` with every problem (a form's "check your
        answers" step)."""
        org_id = _scope(actor, Role.MANAGER)
        with self.reader() as s:
            campaign = None if campaign_id is None else _find(s, org_id, campaign_id)
            checked, _ = self._check(s, actor, org_id, name, flow, settings, campaign=campaign)
        return checked.warnings

    # ------------------------------------------------------------------ changes
    def create(
        self, actor: Actor, name: str, flow: str | Path, settings: CampaignSettings
    ) -> Created:
        """A draft campaign in the actor's organisation. ``flow``: ``flow:<id>`` (a flow of
        the organisation in the database), ``example:<file>`` (a shipped example) or, on
        the command line, a flow file's path."""
        org_id = _scope(actor, Role.MANAGER)
        now = self.clock()
        with self.factory.begin() as s:
            checked, stored = self._check(s, actor, org_id, name, flow, settings)
            assert stored is not None
            try:
                campaign = cstore.create_campaign(
                    s, name=checked.name, flow_path=stored, at=now, org_id=org_id,
                    **checked.values,
                )  # fmt: skip
            except cstore.CampaignError as exc:  # the name, taken since the check
                raise CampaignInvalid([FieldProblem("name", TAKEN, str(exc))], name) from None
            _record(s, actor, campaign, "create", now, flow=stored, **checked.audit_values())
            return Created(campaign.id, campaign.name, checked.warnings)

    def update(
        self,
        actor: Actor,
        campaign_id: str,
        settings: CampaignSettings,
        *,
        name: str | None = None,
        flow: str | Path | None = None,
    ) -> list[str]:
        """Change a campaign's settings (and its name, and the flow of a draft); see
        ``EDITABLE_STATES``. Returns the warnings (the caller ID); the audit entry lists
        each field that changed, before and after."""
        org_id = _scope(actor, Role.MANAGER)
        now = self.clock()
        with self.factory.begin() as s:
            campaign = _find(s, org_id, campaign_id, lock=True)
            if campaign.status not in EDITABLE_STATES:
                hint = "pause it first" if campaign.status is CampaignStatus.RUNNING else "final"
                raise CampaignAdminError(
                    f"campaign {campaign.name!r} is {campaign.status}: its settings cannot "
                    f"change ({hint})",
                    PAUSE_FIRST if campaign.status is CampaignStatus.RUNNING else FINAL,
                )
            given = campaign.name if name is None else name
            checked, stored = self._check(
                s, actor, org_id, given, flow, settings, campaign=campaign
            )
            before = {"name": campaign.name, "flow": campaign.flow_path,
                      **asdict(_settings_of(campaign))}  # fmt: skip
            campaign.name = checked.name
            if stored is not None:
                campaign.flow_path = stored
            for key, value in checked.values.items():
                setattr(campaign, key, value)
            after = {"name": campaign.name, "flow": campaign.flow_path,
                     **asdict(_settings_of(campaign))}  # fmt: skip
            changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
            if changed:
                s.flush()
                _record(s, actor, campaign, "update", now, changed=changed)
        return checked.warnings

    def import_contacts(
        self,
        actor: Actor,
        campaign_id: str,
        path: Path,
        mapping: dict[str, str] | None = None,
        *,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """Contacts from a CSV or XLSX file: ``{"accepted", "duplicates", "rejected":
        [{"line", "reason"}]}``. ``filename``: the name to say in messages (an upload)."""
        org_id = _scope(actor, Role.MANAGER)
        shown = filename or str(path)
        with self.factory.begin() as s:
            campaign = _find(s, org_id, campaign_id, lock=True)
            if campaign.status is CampaignStatus.STOPPED:
                raise CampaignAdminError(f"campaign {campaign.name!r} is stopped (final)", FINAL)
            language = campaign.default_language.value
            now = self.clock()
            try:
                result = read_contacts(
                    path, mapping=mapping, default_language=language, this_year=now.year
                )
            except ContactFileError as exc:
                message = str(exc).replace(str(path), shown)
                raise CampaignInvalid([FieldProblem("file", UNREADABLE_FILE, message)]) from None
            added, already = cstore.add_contacts(s, campaign.id, result.rows, at=now)
            if campaign.status is CampaignStatus.RUNNING:
                cstore.schedule_first_attempts(s, campaign.id, now, at=now)
            report = {
                "accepted": added,
                "duplicates": result.duplicates + already,
                "rejected": [{"line": r.line, "reason": r.reason} for r in result.rejected],
            }
            _record(
                s, actor, campaign, "import_contacts", now, file=Path(shown).name,
                accepted=added, duplicates=report["duplicates"],
                rejected=len(result.rejected),
            )  # fmt: skip
        return report

    def start(self, actor: Actor, campaign_id: str) -> str:
        """Freeze the flow, schedule every contact's first attempt, run."""
        org_id = _scope(actor, Role.MANAGER)
        now = self.clock()
        with self.factory.begin() as s:
            campaign = _find(s, org_id, campaign_id, lock=True)
            name = campaign.name
            if campaign.status is CampaignStatus.RUNNING:
                return "already running"
            if campaign.status is CampaignStatus.STOPPED:
                raise CampaignAdminError(
                    f"campaign {name!r} is stopped (final): create a new one", FINAL
                )
            if campaign.flow_snapshot is None:
                try:
                    flow, text = admin_flows.read(s, campaign.flow_path, campaign.org_id)
                except admin_flows.UnknownFlow as exc:
                    raise CampaignAdminError(f"campaign {name!r}: {exc}", FLOW_UNUSABLE) from None
                except FlowError as exc:
                    raise CampaignAdminError(
                        f"campaign {name!r}: the flow {campaign.flow_path} cannot be used:\n{exc}",
                        FLOW_UNUSABLE,
                    ) from None
                campaign.flow_snapshot = text
                campaign.flow_id = flow.id
                campaign.flow_version = flow.version
            count = cstore.schedule_first_attempts(s, campaign.id, now, at=now)
            contacts = s.scalar(
                sa.select(sa.func.count())
                .select_from(Contact)
                .where(Contact.campaign_id == campaign.id)
            )
            if not contacts:
                raise CampaignAdminError(
                    f"campaign {name!r} has no contacts: import some first "
                    "(ivr campaign import-contacts)",
                    NO_CONTACTS,
                )
            before = campaign.status
            self._move(s, campaign, CampaignStatus.RUNNING, "starting", now)
            _record(s, actor, campaign, "start", now, before=before.value, first_attempts=count)
            window = admin_queries.window_now(campaign, now)["reason"]
        note = f"{count} first attempt(s) scheduled"
        if window:
            note += f"; {window}: calls start when the window opens"
        return note

    def pause(self, actor: Actor, campaign_id: str, reason: str = "paused by staff") -> bool:
        """Stop placing new calls (the calls on the line finish). False: it was paused."""
        return self._change(actor, campaign_id, "pause", CampaignStatus.PAUSED, reason,
                            {CampaignStatus.RUNNING})  # fmt: skip

    def resume(self, actor: Actor, campaign_id: str) -> bool:
        """A paused campaign runs again (contacts imported meanwhile get their first
        attempt). False: it was running."""
        return self._change(actor, campaign_id, "resume", CampaignStatus.RUNNING, "resumed",
                            {CampaignStatus.PAUSED})  # fmt: skip

    def stop(self, actor: Actor, campaign_id: str, reason: str = "stopped by staff") -> bool:
        """End the campaign for good: the attempts still due are cancelled. False: it was
        stopped."""
        return self._change(actor, campaign_id, "stop", CampaignStatus.STOPPED, reason,
                            set(CampaignStatus) - {CampaignStatus.STOPPED})  # fmt: skip

    def _change(
        self,
        actor: Actor,
        campaign_id: str,
        action: str,
        status: CampaignStatus,
        reason: str,
        allowed_from: set[CampaignStatus],
    ) -> bool:
        org_id = _scope(actor, Role.MANAGER)
        now = self.clock()

        def change(s: Session) -> bool:
            campaign = _find(s, org_id, campaign_id, lock=True)
            before = campaign.status
            if before is status:
                return False
            if before not in allowed_from:
                raise CampaignAdminError(
                    f"campaign {campaign.name!r} is {before}: it cannot {action} (only a "
                    f"{' or '.join(sorted(allowed_from))} campaign can)",
                    FINAL if before is CampaignStatus.STOPPED else NOT_NOW,
                )
            if status is CampaignStatus.RUNNING:
                cstore.schedule_first_attempts(s, campaign.id, now, at=now)
            self._move(s, campaign, status, reason, now)
            _record(s, actor, campaign, action, now, before=before.value, reason=reason)
            return True

        # Stopping cancels the due attempts that a telephony worker may be claiming at this
        # moment: on PostgreSQL one of the two can be a deadlock's victim; ours runs again.
        return in_transaction(self.factory, change)

    @staticmethod
    def _move(
        s: Session, campaign: Campaign, status: CampaignStatus, reason: str, now: datetime
    ) -> None:
        try:
            cstore.set_status(s, campaign.id, status, reason, at=now)
        except cstore.CampaignError as exc:
            raise CampaignAdminError(str(exc), NOT_NOW) from None

    # ------------------------------------------------------------------ reads
    def status(self, actor: Actor, campaign_id: str) -> dict[str, Any]:
        """The campaign and its funnel (``ivr campaign status``)."""
        org_id = _scope(actor, Role.REVIEWER)
        with self.reader() as s:
            campaign = _find(s, org_id, campaign_id)
            report = cstore.funnel(s, campaign.id)
            return {
                "campaign": campaign.name,
                "id": campaign.id,
                "status": campaign.status.value,
                "reason": campaign.status_reason,
                "flow": {
                    "id": campaign.flow_id,
                    "version": campaign.flow_version,
                    "path": campaign.flow_path,
                },
                "caller_id": campaign.caller_id,
                **report,
            }

    def page(
        self,
        actor: Actor,
        *,
        before: str | None = None,
        after: str | None = None,
        limit: int = 25,
    ) -> admin_queries.Page:
        """A page of the campaign list, newest first, with contacts and progress (keyset
        pagination: ``before``/``after`` are the page's cursors)."""
        org_id = _scope(actor, Role.REVIEWER)
        with self.reader() as s:
            return admin_queries.page(s, _in_scope(org_id), before=before, after=after, limit=limit)

    def detail(self, actor: Actor, campaign_id: str) -> admin_queries.Detail:
        """A campaign's settings as the campaign page and the edit form show them."""
        org_id = _scope(actor, Role.REVIEWER)
        with self.reader() as s:
            campaign = _find(s, org_id, campaign_id)
            return admin_queries.detail(
                s, campaign, _settings_of(campaign), campaign.status in EDITABLE_STATES
            )

    def progress(self, actor: Actor, campaign_id: str) -> dict[str, Any]:
        """The live progress: the funnel, calls in progress, calls per minute (last 5
        minutes), and why it is not dialling now and when it may (see
        ``admin_queries.progress``)."""
        org_id = _scope(actor, Role.REVIEWER)
        with self.reader() as s:
            campaign = _find(s, org_id, campaign_id)
            return admin_queries.progress(s, campaign, self.clock())

    def flow_choices(self, actor: Actor) -> list[admin_flows.FlowChoice]:
        """The flows a new campaign of the actor's organisation may use."""
        org_id = _scope(actor, Role.REVIEWER)
        with self.reader() as s:
            return admin_flows.choices(s, org_id)

    def list(self, actor: Actor) -> list[dict[str, Any]]:
        """Every campaign in the actor's scope, oldest first (``ivr campaign list``). Last
        in the class: below it, ``list`` would name this method."""
        org_id = _scope(actor, Role.REVIEWER)
        with self.reader() as s:
            return [
                {"id": c.id, "name": c.name, "status": c.status.value, "reason": c.status_reason}
                for c in s.scalars(
                    sa.select(Campaign).where(_in_scope(org_id)).order_by(Campaign.created_at)
                )
            ]


def format_status(report: dict[str, Any]) -> str:
    """The funnel as the pilots reported it, for a terminal."""
    lines = [
        f"campaign {report['campaign']}: {report['status']}"
        + (f" ({report['reason']})" if report.get("reason") else ""),
        f"  contacts           {report['contacts']}",
        f"  numbers attempted  {report['numbers_attempted']}",
        f"  calls placed       {report['calls_placed']}",
        f"  answered           {report['answered']}",
        f"  survey started     {report['survey_started']}",
        f"  completed          {report['completed']}",
        f"  opted out          {report['opted_out']}",
        f"  response rate      {report['response_rate'] * 100:.1f} %",
        "  outcomes           " + ", ".join(f"{k} {v}" for k, v in report["outcomes"].items() if v),
    ]
    for title, key in (("by language", "by_language"), ("by age group", "by_age_group")):
        lines.append(f"  {title}:")
        for part, block in report[key].items():
            if block["contacts"]:
                lines.append(
                    f"    {part:10} contacts {block['contacts']:6}  answered "
                    f"{block['answered']:6}  completed {block['completed']:6}  "
                    f"rate {block['response_rate'] * 100:5.1f} %"
                )
    return "\n".join(lines)


def as_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, default=str)

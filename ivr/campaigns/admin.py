"""Campaign administration (what the CLI and, later, the staff UI do): create, import
contacts, start, pause, resume, stop, status. The telephony worker's dialer does the
calling; this only changes what is in the database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.campaigns import rules
from ivr.campaigns.contacts import read_contacts
from ivr.campaigns.dialer import policy_of
from ivr.campaigns.errors import CampaignAdminError
from ivr.campaigns.numbers import NumberError, caller_id_warnings, normalise
from ivr.clock import Clock
from ivr.flows.loader import load_flow
from ivr.store import campaigns as cstore
from ivr.store.models import Campaign, CampaignStatus, Contact


@dataclass(frozen=True)
class CampaignSettings:
    caller_id: str | None = None
    timezone: str = "Europe/Helsinki"
    windows: str = "mon-fri 10:00-20:00"
    allow_holidays: bool = False
    max_attempts: int = 3
    retry_busy_minutes: int = 30
    retry_no_answer_minutes: int = 120
    retry_failed_minutes: int = 60
    calls_per_second: float = 2.0
    max_concurrent: int = 30
    default_language: str = "fi"
    cross_campaign_daily_cap: bool = True


class CampaignAdmin:
    def __init__(self, factory: sessionmaker[Session], clock: Clock) -> None:
        self.factory = factory
        self.clock = clock  # the App's one clock, shared with the dialer

    def _get(self, s: Session, name: str) -> Campaign:
        campaign = cstore.get_campaign(s, name)
        if campaign is None:
            raise CampaignAdminError(f"no campaign named {name!r}")
        return campaign

    def create(self, name: str, flow_path: Path, settings: CampaignSettings) -> list[str]:
        """Create a draft campaign; returns warnings (e.g. a foreign-looking caller ID)."""
        load_flow(flow_path)  # a broken flow is refused now, with every problem listed
        values = {k: v for k, v in settings.__dict__.items() if k != "caller_id"}
        try:
            policy_of(Campaign(name=name, flow_path=str(flow_path), **values))
        except ValueError as exc:
            raise CampaignAdminError(f"campaign {name!r}: {exc}") from None
        warnings: list[str] = []
        caller_id = settings.caller_id
        if caller_id:
            try:
                caller_id = normalise(caller_id)
            except NumberError as exc:
                raise CampaignAdminError(f"--caller-id {settings.caller_id!r}: {exc}") from None
        warnings += caller_id_warnings(caller_id or "")
        with self.factory.begin() as s:
            cstore.create_campaign(
                s,
                name=name,
                flow_path=str(flow_path.resolve()),
                caller_id=caller_id,
                at=self.clock(),
                **values,
            )
        return warnings

    def import_contacts(
        self, name: str, path: Path, mapping: dict[str, str] | None = None
    ) -> dict[str, Any]:
        with self.factory.begin() as s:
            campaign = self._get(s, name)
            language = campaign.default_language.value
            now = self.clock()
            result = read_contacts(
                path, mapping=mapping, default_language=language, this_year=now.year
            )
            added, already = cstore.add_contacts(s, campaign.id, result.rows, at=now)
            if campaign.status is CampaignStatus.RUNNING:
                cstore.schedule_first_attempts(s, campaign.id, now, at=now)
        return {
            "accepted": added,
            "duplicates": result.duplicates + already,
            "rejected": [{"line": r.line, "reason": r.reason} for r in result.rejected],
        }

    def start(self, name: str) -> str:
        """Freeze the flow, schedule every contact's first attempt, run."""
        now = self.clock()
        with self.factory.begin() as s:
            campaign = self._get(s, name)
            if campaign.status is CampaignStatus.RUNNING:
                return "already running"
            path = Path(campaign.flow_path)
            if campaign.flow_snapshot is None:
                try:
                    flow = load_flow(path)
                except OSError as exc:
                    raise CampaignAdminError(f"the flow {path} cannot be read: {exc}") from None
                campaign.flow_snapshot = path.read_text(encoding="utf-8")
                campaign.flow_id = flow.id
                campaign.flow_version = flow.version
            count = cstore.schedule_first_attempts(s, campaign.id, now, at=now)
            contacts = (
                s.scalar(
                    sa.select(sa.func.count())
                    .select_from(Contact)
                    .where(Contact.campaign_id == campaign.id)
                )
                or 0
            )
            if not contacts:
                raise CampaignAdminError(
                    f"campaign {name!r} has no contacts: import some first "
                    "(ivr campaign import-contacts)"
                )
            cstore.set_status(s, campaign.id, CampaignStatus.RUNNING, "starting", at=now)
            policy = rules.CallingPolicy(
                timezone=campaign.timezone,
                windows=rules.parse_windows(campaign.windows),
                allow_holidays=campaign.allow_holidays,
            )
            window = rules.window_reason(policy, now)
        note = f"{count} first attempt(s) scheduled"
        if window:
            note += f"; {window}: calls start when the window opens"
        return note

    def set_status(self, name: str, status: CampaignStatus, reason: str) -> None:
        with self.factory.begin() as s:
            campaign = self._get(s, name)
            cstore.set_status(s, campaign.id, status, reason, at=self.clock())

    def status(self, name: str) -> dict[str, Any]:
        with self.factory() as s:
            campaign = self._get(s, name)
            report = cstore.funnel(s, campaign.id)
            return {
                "campaign": campaign.name,
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

    def list(self) -> list[dict[str, Any]]:
        with self.factory() as s:
            return [
                {"name": c.name, "status": c.status.value, "reason": c.status_reason}
                for c in s.scalars(sa.select(Campaign).order_by(Campaign.created_at))
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

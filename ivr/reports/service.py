"""Who may see a report, and the audited download (the web pages and the CLI call these).

Managers and admins of the organisation see its campaigns' and lines' reports (the ready
report is a manager's tool: reviewers work on single answers and callbacks, not on the
organisation's results as a whole). Another organisation's campaign or line is ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor, NotFound
from ivr.clock import Clock
from ivr.reports import cache
from ivr.reports.build import line_report
from ivr.reports.model import CampaignReport, LineReport, Note
from ivr.reports.xlsx import workbook
from ivr.store.db import reader_for
from ivr.store.models import Campaign
from ivr.store.org_models import InboundLine, Role

ROLE = Role.MANAGER


class Reports:
    def __init__(self, factory: sessionmaker[Session], clock: Clock) -> None:
        self.factory = factory
        self.reader = reader_for(factory)  # the counting reads hold no write lock
        self.clock = clock

    @staticmethod
    def _campaign(s: Session, actor: Actor, campaign_id: str) -> str:
        org_id = actor.require(ROLE)
        campaign = s.get(Campaign, campaign_id)
        if campaign is None or campaign.org_id != org_id:
            raise NotFound("campaign")
        return campaign.id

    def campaign(
        self, actor: Actor, campaign_id: str, *, language: str | None = None
    ) -> CampaignReport:
        """The report; its heavy counts from the cache while current (``cache``)."""
        with self.reader() as s:
            made, counted = cache.report(
                s, self._campaign(s, actor, campaign_id), clock=self.clock, language=language
            )
        cache.save(self.factory, counted)
        return made

    def line(self, actor: Actor, line_id: str, *, language: str | None = None) -> LineReport:
        org_id = actor.require(ROLE)
        with self.factory() as s:
            line = s.get(InboundLine, line_id)
            if line is None or line.org_id != org_id:
                raise NotFound("line")
            return line_report(s, line.id, language=language)

    def download(
        self,
        actor: Actor,
        campaign_id: str,
        texts: Mapping[str, str],
        *,
        language: str | None = None,
        note_text: Callable[[Note], str] = Note.text,
    ) -> tuple[CampaignReport, bytes]:
        """The report as an XLSX workbook (``texts``: the sheet's words in the reader's
        language, ``xlsx.TEXTS`` keys), and the audit entry ``report.download``."""
        report = self.campaign(actor, campaign_id, language=language)
        data = workbook(report, texts, at=self.clock(), note_text=note_text)
        with self.factory.begin() as s:
            cid = self._campaign(s, actor, campaign_id)
            audit.record(
                s, actor, "report.download", at=self.clock(), target_type="campaign",
                target_id=cid, format="xlsx",
            )  # fmt: skip
        return report, data

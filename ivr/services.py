"""The services the staff web UI and the ``ivr`` command share, over one database engine.

Built by the composition root (``App.services()``); views and CLI commands call these and
nothing below them, so a business rule or an organisation check is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from ivr.accounts.service import Accounts
    from ivr.callbacks.service import CallbackService
    from ivr.campaigns.admin import CampaignAdmin
    from ivr.clock import Clock
    from ivr.config import Settings
    from ivr.credentials import Credentials
    from ivr.exports.service import Exports
    from ivr.flows.library import FlowLibrary
    from ivr.reports.service import Reports
    from ivr.review.service import ReviewService
    from ivr.schedules.service import Schedules
    from ivr.telephony.line_admin import LineAdmin
    from ivr.webhooks.service import Webhooks


@dataclass
class Services:
    settings: Settings
    credentials: Credentials
    clock: Clock
    engine: Engine
    factory: sessionmaker[Session]
    accounts: Accounts
    campaigns: CampaignAdmin
    flows: FlowLibrary
    lines: LineAdmin
    reports: Reports
    review: ReviewService
    exports: Exports
    callbacks: CallbackService
    schedules: Schedules  # scheduled e-mailed reports
    webhooks: Webhooks  # the organisation's webhook endpoints and deliveries

    def close(self) -> None:
        self.engine.dispose()

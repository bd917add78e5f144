"""The ready report: a campaign's (or an inbound line's) funnel, AAPOR dispositions and
rates, per-question results (weighted and not), open-answer themes, representativeness and
raking weights, and cost.

``campaign_report(session, campaign_id)`` → ``CampaignReport`` (``.to_dict()``: JSON-ready;
``.weights``: contact id → raking weight of each respondent); ``line_report(session,
line_id)`` → ``LineReport``. Neither checks permissions: the caller scopes the id to the
actor's organisation first (``ivr.reports.service.Reports`` does).
"""

from ivr.reports.build import campaign_report, line_report
from ivr.reports.model import CampaignReport, LineReport, Note

__all__ = ["CampaignReport", "LineReport", "Note", "campaign_report", "line_report"]

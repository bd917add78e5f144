"""The ready report of a campaign or an inbound line: the aggregates counted in SQL
(``queries``) put through the pure parts (``dispositions``, ``weighting``, ``questions``,
``costs``, ``themes``). The caller checks who may see it; these take ids already scoped."""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType

from sqlalchemy.orm import Session

from ivr.accounts.audit import NotFound
from ivr.campaigns.billing import BillingRule, BillingRuleError, parse_rule
from ivr.flows.loader import FlowError, parse_flow
from ivr.flows.model import Flow
from ivr.reports import costs, dispositions, queries, weighting
from ivr.reports.aggregates import Aggregates
from ivr.reports.model import CampaignReport, LineFunnel, LineReport, Quote, Theme, Themes
from ivr.reports.questions import questions
from ivr.store.models import Campaign
from ivr.store.org_models import FlowDoc, InboundLine


def _flow(text: str | None) -> Flow | None:
    if not text:
        return None
    try:
        return parse_flow(text)
    except FlowError:
        return None


def _language(flow: Flow | None, wanted: str | None, fallback: str) -> str:
    if flow is None:
        return wanted or fallback
    if wanted and wanted in flow.languages:
        return wanted
    return flow.default_language


def _themes(found: queries.ThemeCounts) -> Themes:
    return Themes(
        open_answers=found.open_answers,
        reviewed=found.reviewed,
        tagged=found.tagged,
        themes=tuple(
            Theme(
                t.tag_id, t.name, t.count,
                tuple(
                    Quote(q.transcript_id, q.corrected_text or q.machine_text,
                          bool(q.corrected_text), q.reviewed, q.language)
                    for q in t.quotes
                ),
            )
            for t in found.themes
        ),
    )  # fmt: skip


def _rule(campaign: Campaign) -> BillingRule | None:
    try:
        return parse_rule(campaign.billing_rule)
    except BillingRuleError:
        return None


def count_aggregates(session: Session, campaign: Campaign) -> Aggregates:
    """The campaign's heavy aggregates, counted now (GROUP BY over all its contacts,
    attempts and answers): what ``ivr.reports.cache`` keeps."""
    rule = _rule(campaign)
    return Aggregates(
        groups=tuple(queries.contact_groups(session, campaign.id)),
        answers=tuple(queries.campaign_answers(session, campaign.id)),
        talk=queries.talk(session, campaign.id, rule) if rule is not None else (0, 0.0, 0),
    )


def campaign_report(
    session: Session,
    campaign_id: str,
    *,
    language: str | None = None,
    per_contact_weights: bool = True,
    aggregates: Aggregates | None = None,
    as_of: datetime | None = None,
) -> CampaignReport:
    """The campaign's report; ``language``: the labels' language (default: the flow's).
    ``per_contact_weights=False`` leaves ``weights`` empty (the page and the workbook
    show the weights per group and need no row per respondent: a query saved).
    ``aggregates``: the heavy counts already made (``ivr.reports.cache``, counted at
    ``as_of``); None: counted now. The themes are read now either way."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign")
    flow = _flow(campaign.flow_snapshot)
    lang = _language(flow, language, str(campaign.default_language))
    if aggregates is None:
        aggregates = count_aggregates(session, campaign)
    groups = list(aggregates.groups)
    funnel = dispositions.funnel(groups)
    contacts, respondents = dispositions.cells(groups)
    weighed = weighting.weigh(contacts, respondents)
    cell_weights = weighed.cell_weights
    answers = list(aggregates.answers)
    calls, talk, billable = aggregates.talk
    per_contact = (
        {cid: cell_weights[cell] for cid, cell in queries.respondent_cells(session, campaign_id)
         if cell in cell_weights}
        if cell_weights and per_contact_weights
        else {}
    )  # fmt: skip
    return CampaignReport(
        campaign_id=campaign.id,
        name=campaign.name,
        status=str(campaign.status),
        language=lang,
        funnel=funnel,
        aapor=dispositions.dispositions(groups),
        questions=questions(answers, flow, lang, cell_weights),
        themes=_themes(queries.themes(session, queries.campaign_scope(campaign_id))),
        representativeness=weighed.representativeness,
        weights_summary=weighed.summary,
        cost=costs.summary(
            campaign.billing_rule,
            campaign.price_per_minute,
            calls,
            talk,
            billable,
            funnel.completed,
        ),  # fmt: skip
        weights=MappingProxyType(per_contact),
        cell_weights=MappingProxyType(dict(cell_weights)),
        as_of=as_of,
    )


def line_report(session: Session, line_id: str, *, language: str | None = None) -> LineReport:
    """An inbound line's report: its calls (of the line's organisation, to its number)."""
    line = session.get(InboundLine, line_id)
    if line is None:
        raise NotFound("line")
    doc = session.get(FlowDoc, line.flow_id)
    flow = _flow(doc.yaml if doc is not None else None)
    lang = _language(flow, language or line.language or None, "fi")
    calls, answered, completed = queries.line_funnel(session, line.org_id, line.number)
    answers = queries.line_answers(session, line.org_id, line.number)
    return LineReport(
        line_id=line.id,
        number=line.number,
        flow_name=doc.name if doc is not None else "",
        language=lang,
        funnel=LineFunnel(calls, answered, completed),
        questions=questions(answers, flow, lang, {}),
        themes=_themes(queries.themes(session, queries.line_scope(line.org_id, line.number))),
    )

"""The campaign's cost from its billed talk time (pure): ``ivr.campaigns.billing`` rules.

Billable seconds are summed per answered attempt (each rounded by the campaign's rule, in
SQL: ``queries.talk``), then minutes × price per minute; the cost per completed answer is
that amount divided by the completed contacts. Without a price the amount is ``None`` and
the report says "price not set".
"""

from __future__ import annotations

from ivr.campaigns.billing import BillingRuleError, Cost, parse_rule
from ivr.reports.model import CostSummary, Note


def summary(
    rule_text: str,
    price_per_minute: float | None,
    calls: int,
    talk_seconds: float,
    billable_seconds: int,
    completed: int,
) -> CostSummary:
    notes: list[Note] = []
    try:
        parse_rule(rule_text)
    except BillingRuleError:
        notes.append(Note("bad_rule", value=rule_text))
        price_per_minute = None
    if price_per_minute is None and not notes:
        notes.append(Note("price_not_set"))
    cost = Cost(calls, billable_seconds, price_per_minute)
    return CostSummary(
        billing_rule=rule_text,
        price_per_minute=price_per_minute,
        calls=calls,
        talk_seconds=round(talk_seconds, 1),
        billable_seconds=billable_seconds,
        billable_minutes=round(cost.billable_minutes, 2),
        amount=cost.amount,
        completed=completed,
        per_completed=cost.per(completed),
        notes=tuple(notes),
    )

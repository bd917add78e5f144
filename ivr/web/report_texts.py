"""The report's words in the reader's language, and its charts (for ``ivr.web.reports``)."""

from __future__ import annotations

from collections.abc import Sequence

from flask_babel import format_decimal
from flask_babel import gettext as _
from markupsafe import Markup

from ivr.reports.model import Note, QuestionResult
from ivr.reports.svg import Bar, bar_chart
from ivr.web.i18n import fmt_number


def percent(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{fmt_number(round(value * 100, 1))} %"


def dimension_names() -> dict[str, str]:
    return {"language": _("Language"), "age_group": _("Age group"), "area": _("Area")}


def note_text(note: Note) -> str:
    dims = dimension_names()
    dim = dims.get(note.dimension, note.dimension)
    value = note.value or _("Not known")
    texts = {
        "no_respondents": _("No completed answers yet: nothing to compare or weight."),
        "no_values": _("%(dimension)s: not known for any contact; not used for weighting.",
                       dimension=dim),
        "single_value": _("%(dimension)s: every contact has the same value; nothing to weight.",
                          dimension=dim),
        "missing_stratum": _(
            "%(dimension)s %(value)s: no respondents. Weighting cannot make up for this "
            "group; the other groups share its part of the weighted results.",
            dimension=dim, value=value,
        ),
        "unknown_value": _("%(dimension)s: contacts without a value are a group of their own.",
                           dimension=dim),
        "not_converged": _("The weights do not fully meet every margin: some groups are "
                           "small or empty. Read the weighted results with care."),
        "price_not_set": _("Price not set: no cost can be computed."),
        "bad_rule": _("The billing rule %(rule)s cannot be read; no cost can be computed.",
                      rule=note.value),
    }  # fmt: skip
    return str(texts.get(note.code, note.text()))


def charts(questions: Sequence[QuestionResult], *, weighted: bool) -> dict[str, Markup]:
    """Each question's bar chart (SVG), by node id: shares of answers, and the weighted
    shares beside them when there are weights."""
    out = {}
    for q in questions:
        bars = [
            Bar(
                label=o.label,
                value=o.share or 0.0,
                text=percent(o.share),
                second=(o.weighted_share or 0.0) if weighted else None,
                second_text=percent(o.weighted_share),
            )
            for o in q.options
        ]
        parts = [f"{o.label}: {o.count} ({percent(o.share)})" for o in q.options]
        if weighted:
            description = _("Answers (%(n)s) by option, unweighted and weighted: %(bars)s",
                            n=q.answers, bars="; ".join(
                                f"{p}, {_('weighted')} {percent(o.weighted_share)}"
                                for p, o in zip(parts, q.options, strict=True)))  # fmt: skip
        else:
            description = _("Answers (%(n)s) by option: %(bars)s", n=q.answers,
                            bars="; ".join(parts))  # fmt: skip
        title = q.text or q.node_id
        out[q.node_id] = Markup(bar_chart(f"chart-{q.node_id}", title, description, bars))  # noqa: S704 (escaped in bar_chart)
    return out


def workbook_texts() -> dict[str, str]:
    """``ivr.reports.xlsx.TEXTS`` in the reader's language."""
    return {
        "sheet_summary": _("Summary"),
        "sheet_funnel": _("Funnel"),
        "sheet_aapor": _("AAPOR"),
        "sheet_questions": _("Questions"),
        "sheet_themes": _("Themes"),
        "sheet_representativeness": _("Representativeness"),
        "sheet_cost": _("Cost"),
        "title": _("Campaign report"),
        "campaign": _("Campaign"),
        "status": _("Status"),
        "made": _("Made"),
        "contacts": _("Contacts"),
        "attempted": _("Attempted"),
        "answered": _("Answered"),
        "completed": _("Completed"),
        "calls_placed": _("Calls placed"),
        "stage": _("Stage"),
        "count": _("Amount"),
        "share": _("Share"),
        "code": _("AAPOR code"),
        "group": _("Group"),
        "disposition": _("Disposition"),
        "rate": _("Rate"),
        "formula": _("Formula"),
        "value": _("Value"),
        "question": _("Question"),
        "answer": _("Answer"),
        "answers": _("Answers"),
        "respondents": _("Completed respondents"),
        "weighted": _("Weighted"),
        "weighted_share": _("Weighted share"),
        "theme": _("Theme"),
        "quote": _("Example"),
        "open_answers": _("Open answers"),
        "reviewed": _("Reviewed"),
        "tagged": _("Tagged"),
        "dimension": _("Characteristic"),
        "contact_share": _("Share of contacts"),
        "respondent_share": _("Share of respondents"),
        "difference": _("Difference"),
        "missing": _("No respondents"),
        "yes": _("yes"),
        "billing_rule": _("Billing rule"),
        "price_per_minute": _("Price per minute (EUR)"),
        "billed_calls": _("Calls billed"),
        "talk_seconds": _("Talk time (s)"),
        "billable_minutes": _("Billable minutes"),
        "amount": _("Cost (EUR)"),
        "per_completed": _("Cost per completed answer (EUR)"),
        "price_not_set": _("Price not set"),
        "notes": _("Notes"),
        "weights": _("Weights"),
        "minimum": _("Smallest weight"),
        "maximum": _("Largest weight"),
        "efficiency": _("Weighting efficiency (%)"),
        "language": _("Language"),
        "age_group": _("Age group"),
        "area": _("Area"),
        "unknown": _("Not known"),
    }


def points(value: float | None) -> str:
    """A difference of two shares in percentage points, with its sign."""
    if value is None:
        return "–"
    number = round(value * 100, 1)
    sign = "+" if number > 0 else ("−" if number < 0 else "±")
    return f"{sign}{fmt_number(abs(number))}"


def money(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{format_decimal(value, format='#,##0.00')} €"


def disposition_name(code: str) -> str:
    names = {
        "1.1": _("Complete"),
        "1.2": _("Partial"),
        "2.10": _("Refusal and break-off"),
        "2.11": _("Refusal"),
        "4.31": _("Non-working number"),
        "3.12": _("Always busy"),
        "3.13": _("No answer"),
        "3.90": _("Other"),
        "3.11": _("Not attempted or worked"),
    }
    return str(names.get(code, code))


def rate_name(key: str) -> str:
    names = {
        "rr1": _("Response rate 1"),
        "rr2": _("Response rate 2"),
        "coop1": _("Cooperation rate 1"),
        "ref1": _("Refusal rate 1"),
        "con1": _("Contact rate 1"),
    }
    return str(names.get(key, key))


def dimension_name(name: str) -> str:
    return dimension_names().get(name, name)

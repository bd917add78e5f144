"""The ready report as an XLSX workbook (xlsxwriter), to forward as is.

Sheets, in order: Summary, Funnel, AAPOR, Questions (unweighted and weighted), Themes,
Representativeness, Cost. Numbers are written as numbers (shares as fractions with a
percent format), never as text. The words come from ``texts`` (the reader's language,
keys of ``TEXTS``, which holds the English).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

import xlsxwriter  # type: ignore[import-untyped]

from ivr.reports.model import CampaignReport, Note

TEXTS: Final[Mapping[str, str]] = {
    "sheet_summary": "Summary",
    "sheet_funnel": "Funnel",
    "sheet_aapor": "AAPOR",
    "sheet_questions": "Questions",
    "sheet_themes": "Themes",
    "sheet_representativeness": "Representativeness",
    "sheet_cost": "Cost",
    "title": "Campaign report",
    "campaign": "Campaign",
    "status": "Status",
    "made": "Made",
    "contacts": "Contacts",
    "attempted": "Attempted",
    "answered": "Answered",
    "completed": "Completed",
    "calls_placed": "Calls placed",
    "stage": "Stage",
    "count": "Amount",
    "share": "Share",
    "code": "AAPOR code",
    "group": "Group",
    "disposition": "Disposition",
    "rate": "Rate",
    "formula": "Formula",
    "value": "Value",
    "question": "Question",
    "answer": "Answer",
    "answers": "Answers",
    "respondents": "Completed respondents",
    "weighted": "Weighted",
    "weighted_share": "Weighted share",
    "theme": "Theme",
    "quote": "Example",
    "open_answers": "Open answers",
    "reviewed": "Reviewed",
    "tagged": "Tagged",
    "dimension": "Characteristic",
    "contact_share": "Share of contacts",
    "respondent_share": "Share of respondents",
    "difference": "Difference",
    "missing": "No respondents",
    "yes": "yes",
    "billing_rule": "Billing rule",
    "price_per_minute": "Price per minute (EUR)",
    "billed_calls": "Calls billed",
    "talk_seconds": "Talk time (s)",
    "billable_minutes": "Billable minutes",
    "amount": "Cost (EUR)",
    "per_completed": "Cost per completed answer (EUR)",
    "price_not_set": "Price not set",
    "notes": "Notes",
    "weights": "Weights",
    "minimum": "Smallest weight",
    "maximum": "Largest weight",
    "efficiency": "Weighting efficiency (%)",
    "language": "Language",
    "age_group": "Age group",
    "area": "Area",
    "unknown": "Not known",
}


def workbook(
    report: CampaignReport,
    texts: Mapping[str, str],
    *,
    at: datetime,
    note_text: Callable[[Note], str] = Note.text,
) -> bytes:
    """The workbook's bytes; ``note_text`` words a note (default: English)."""
    t = {**TEXTS, **texts}
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True})
    head = book.add_format({"bold": True, "bottom": 1, "text_wrap": True})
    pct = book.add_format({"num_format": "0.0%"})
    dec = book.add_format({"num_format": "0.00"})
    money = book.add_format({"num_format": "#,##0.00"})
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})

    def sheet(key: str, headers: list[str], widths: list[int]) -> Any:
        ws = book.add_worksheet(t[key][:31])
        for col, (h, w) in enumerate(zip(headers, widths, strict=True)):
            ws.write(0, col, h, head)
            ws.set_column(col, col, w)
        ws.freeze_panes(1, 0)
        return ws

    f = report.funnel
    # Summary
    ws = book.add_worksheet(t["sheet_summary"][:31])
    ws.set_column(0, 0, 36)
    ws.set_column(1, 1, 40)
    ws.write(0, 0, t["title"], bold)
    rows: list[tuple[str, Any, Any]] = [
        (t["campaign"], report.name, None),
        (t["status"], report.status, None),
        (t["made"], at.replace(tzinfo=None), stamp),
        (t["contacts"], f.contacts, None),
        (t["completed"], f.completed, None),
    ]
    rows += [(r.name, r.value, pct) for r in report.aapor.rates]
    amount = report.cost.amount
    rows.append((t["amount"], amount if amount is not None else t["price_not_set"],
                 money if amount is not None else None))  # fmt: skip
    for n, (label, value, fmt) in enumerate(rows, start=2):
        ws.write(n, 0, label)
        _put(ws, n, 1, value, fmt)

    ws = sheet("sheet_funnel", [t["stage"], t["count"], t["share"]], [24, 12, 12])
    for n, (key, value) in enumerate(
        [("contacts", f.contacts), ("attempted", f.attempted), ("answered", f.answered),
         ("completed", f.completed), ("calls_placed", f.calls_placed)], start=1,
    ):  # fmt: skip
        ws.write(n, 0, t[key])
        ws.write_number(n, 1, value)
        if key != "calls_placed" and f.contacts:
            ws.write_number(n, 2, value / f.contacts, pct)

    ws = sheet("sheet_aapor", [t["code"], t["group"], t["disposition"], t["contacts"]],
               [12, 8, 30, 12])  # fmt: skip
    n = 1
    for d in report.aapor.dispositions:
        ws.write(n, 0, d.code)
        ws.write(n, 1, d.group)
        ws.write(n, 2, d.label)
        ws.write_number(n, 3, d.contacts)
        n += 1
    n += 1
    ws.write(n, 0, t["rate"], head)
    ws.write(n, 2, t["formula"], head)
    ws.write(n, 3, t["value"], head)
    for r in report.aapor.rates:
        n += 1
        ws.write(n, 0, r.key.upper())
        ws.write(n, 1, r.name)
        ws.write(n, 2, r.formula)
        _put(ws, n, 3, r.value, pct)

    ws = sheet(
        "sheet_questions",
        [t["question"], t["answer"], t["answers"], t["share"], t["respondents"],
         t["weighted"], t["weighted_share"]],
        [40, 32, 10, 10, 14, 10, 12],
    )  # fmt: skip
    n = 1
    for q in report.questions:
        for o in q.options:
            ws.write(n, 0, q.text or q.node_id)
            ws.write(n, 1, o.label)
            ws.write_number(n, 2, o.count)
            _put(ws, n, 3, o.share, pct)
            ws.write_number(n, 4, o.respondents)
            _put(ws, n, 5, o.weighted, dec)
            _put(ws, n, 6, o.weighted_share, pct)
            n += 1

    ws = sheet("sheet_themes", [t["theme"], t["count"], t["quote"]], [24, 10, 80])
    th = report.themes
    n = 1
    for theme in th.themes:
        ws.write(n, 0, theme.name)
        ws.write_number(n, 1, theme.count)
        for quote in theme.quotes:
            ws.write(n, 2, quote.text)
            n += 1
        if not theme.quotes:
            n += 1
    n += 1
    for key, value in (("open_answers", th.open_answers), ("reviewed", th.reviewed),
                       ("tagged", th.tagged)):  # fmt: skip
        ws.write(n, 0, t[key])
        ws.write_number(n, 1, value)
        n += 1

    ws = sheet(
        "sheet_representativeness",
        [t["dimension"], t["value"], t["contacts"], t["respondents"], t["contact_share"],
         t["respondent_share"], t["difference"], t["weighted_share"], t["missing"]],
        [16, 20, 10, 14, 12, 12, 12, 12, 14],
    )  # fmt: skip
    n = 1
    for dim in report.representativeness.dimensions:
        for sh in dim.shares:
            ws.write(n, 0, t[dim.name])
            ws.write(n, 1, sh.value or t["unknown"])
            ws.write_number(n, 2, sh.contacts)
            ws.write_number(n, 3, sh.respondents)
            _put(ws, n, 4, sh.contact_share, pct)
            _put(ws, n, 5, sh.respondent_share, pct)
            _put(ws, n, 6, sh.difference, pct)
            _put(ws, n, 7, sh.weighted_share, pct)
            ws.write(n, 8, t["yes"] if sh.missing else "")
            n += 1
    w = report.weights_summary
    n += 1
    ws.write(n, 0, t["weights"], bold)
    ws.write(n, 1, w.method)
    for key, value, fmt in (("minimum", w.minimum, dec), ("maximum", w.maximum, dec),
                            ("efficiency", w.efficiency, dec)):  # fmt: skip
        n += 1
        ws.write(n, 0, t[key])
        _put(ws, n, 1, value, fmt)
    for note in w.notes:
        n += 1
        ws.write(n, 0, note_text(note))

    c = report.cost
    ws = sheet("sheet_cost", [t["value"], t["count"]], [36, 16])
    rows = [
        (t["billing_rule"], c.billing_rule, None),
        (t["price_per_minute"], c.price_per_minute, None),
        (t["billed_calls"], c.calls, None),
        (t["talk_seconds"], c.talk_seconds, None),
        (t["billable_minutes"], c.billable_minutes, dec),
        (t["amount"], c.amount, money),
        (t["completed"], c.completed, None),
        (t["per_completed"], c.per_completed, money),
    ]
    for n, (label, value, fmt) in enumerate(rows, start=1):
        ws.write(n, 0, label)
        if value is None and label in (t["price_per_minute"], t["amount"], t["per_completed"]):
            ws.write(n, 1, t["price_not_set"])
        else:
            _put(ws, n, 1, value, fmt)
    book.close()
    return out.getvalue()


def _put(ws: Any, row: int, col: int, value: Any, fmt: Any) -> None:
    """A number as a number (with ``fmt``), text as text, None as an empty cell."""
    if value is None:
        return
    if isinstance(value, bool):
        ws.write_boolean(row, col, value)
    elif isinstance(value, int | float):
        ws.write_number(row, col, value, fmt) if fmt is not None else ws.write_number(
            row, col, value
        )
    elif isinstance(value, datetime):
        ws.write_datetime(row, col, value, fmt)
    else:
        ws.write_string(row, col, str(value))

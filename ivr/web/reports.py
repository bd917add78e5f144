"""The ready report: a campaign's page, its XLSX workbook (audited ``report.download``) and
an inbound line's report. Managers and admins only (``ivr.reports.service``: reviewers
review answers, the results as a whole are the manager's); another organisation's campaign
or line is a 404. The numbers come from ``services().reports`` (the CLI's own source)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template

from ivr.store.org_models import Role
from ivr.web import report_texts
from ivr.web.access import actor, requires, services
from ivr.web.i18n import language
from ivr.web.report_texts import charts, dimension_names, note_text, workbook_texts

bp = Blueprint("reports", __name__, url_prefix="/o/<org_id>")

for _name in ("percent", "points", "money", "disposition_name", "rate_name"):
    bp.add_app_template_global(getattr(report_texts, _name), _name)
bp.add_app_template_filter(report_texts.dimension_name, "dimension_name")


@bp.route("/campaigns/<campaign_id>/report")
@requires(Role.MANAGER)
def campaign(org_id: str, campaign_id: str) -> Any:
    report = services().reports.campaign(actor(), campaign_id, language=language())
    return render_template(
        "reports/campaign.html",
        report=report,
        charts=charts(report.questions, weighted=report.weights_summary.minimum is not None),
        dimensions=dimension_names(),
        note_text=note_text,
    )


@bp.route("/campaigns/<campaign_id>/report.xlsx")
@requires(Role.MANAGER)
def campaign_xlsx(org_id: str, campaign_id: str) -> Any:
    report, data = services().reports.download(
        actor(), campaign_id, workbook_texts(), language=language(), note_text=note_text
    )
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in report.name)[:60]
    return Response(
        data,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="report-{safe}.xlsx"'},
    )


@bp.route("/lines/<line_id>/report")
@requires(Role.MANAGER)
def line(org_id: str, line_id: str) -> Any:
    report = services().reports.line(actor(), line_id, language=language())
    return render_template(
        "reports/line.html",
        report=report,
        charts=charts(report.questions, weighted=False),
        note_text=note_text,
    )

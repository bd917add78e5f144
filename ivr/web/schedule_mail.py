"""Renders a scheduled report's e-mail (``ivr.schedules.render.Renderer``): HTML and plain
text in the schedule's language, from the same report objects the report pages show, each
campaign's XLSX workbook attached (``ivr.reports.xlsx``, its words in that language).

The job worker has no request: a small Flask app of its own (the UI's templates and
catalogues, no views) renders the mail there, as in a request.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

from flask import Flask, g, render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from ivr.reports.xlsx import workbook
from ivr.schedules.render import Attachment, Contents, Rendered, safe_name
from ivr.web import i18n, report_texts

_app: Flask | None = None
_lock = threading.Lock()


def mail_app() -> Flask:
    """The Flask app that renders mail (made once per process)."""
    global _app
    with _lock:
        if _app is None:
            app = Flask("ivr.web")
            i18n.init_i18n(app)
            for name in ("percent", "money", "disposition_name", "rate_name"):
                app.jinja_env.globals[name] = getattr(report_texts, name)
            _app = app
        return _app


def render(contents: Contents) -> Rendered:
    """The e-mail of one run of a schedule."""
    app = mail_app()
    with app.test_request_context(), force_locale(contents.language):
        g.org = SimpleNamespace(timezone=contents.timezone)
        day = i18n.fmt_date(contents.at)
        subject = _("%(org)s: %(schedule)s, %(date)s", org=contents.org_name,
                    schedule=contents.schedule_name, date=day)  # fmt: skip
        context = {"c": contents, "day": day, "subject": subject}
        html = render_template("schedules/email.html", **context)
        text = render_template("schedules/email_text.html", **context)
        texts = report_texts.workbook_texts()
        files = tuple(
            Attachment(
                f"report-{safe_name(report.name)}.xlsx",
                workbook(report, texts, at=contents.at, note_text=report_texts.note_text),
            )
            for report in contents.campaigns
        )
    return Rendered(str(subject), html, text, files)

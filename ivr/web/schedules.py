"""Report schedules (managers and admins): the list, a form to add or change one (every
problem named beside its field), enable/disable, "send now", and each schedule's send
history with its failures. A schedule e-mails one campaign's report, or the reports of all
of the organisation's campaigns and inbound lines: the organisation is the "unit" whose
supervisor gets its own report. The services do the checks, the scoping and the audit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ivr.schedules.service import ALL, ScheduleError, ScheduleForm, Schedules
from ivr.store.org_models import Role
from ivr.web.access import actor, requires, services
from ivr.web.i18n import LANGUAGE_NAMES

bp = Blueprint("schedules", __name__, url_prefix="/o/<org_id>/schedules")

FIELDS = ("name", "frequency", "day", "time", "scope", "recipients", "language")


def schedules() -> Schedules:
    return services().schedules


def labels() -> dict[str, str]:
    return {
        "name": _("Name"),
        "frequency": _("How often"),
        "day": _("Day"),
        "time": _("Time"),
        "scope": _("Report on"),
        "recipients": _("Recipients"),
        "language": _("Language of the e-mail"),
    }


def weekdays() -> list[str]:
    return [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"),
            _("Saturday"), _("Sunday")]  # fmt: skip


def when(frequency: str, day: int) -> str:
    """In words: every Monday, monthly on day 31 (the last day in shorter months)."""
    if frequency == "weekly":
        return str(_("Every %(day)s", day=weekdays()[day] if 0 <= day <= 6 else day))
    if day >= 29:
        return str(_("Monthly on day %(day)s (the last day in shorter months)", day=day))
    return str(_("Monthly on day %(day)s", day=day))


def status_name(status: str | None) -> str:
    names = {
        "sending": _("Sending"),
        "retrying": _("Failed, will be tried again"),
        "sent": _("Sent"),
        "failed": _("Failed"),
    }
    return str(names.get(status or "", "–"))


def messages(error: ScheduleError) -> dict[str, str]:
    """The form's problems in the reader's language, by field."""
    out: dict[str, str] = {}
    for name, code in error.codes.items():
        if name == "name":
            out[name] = (_("Enter a name for the schedule.") if code == "required"
                         else _("The name can be at most 100 characters long."))  # fmt: skip
        elif name == "frequency":
            out[name] = _("Choose weekly or monthly.")
        elif name == "day":
            out[name] = _("Choose a weekday for a weekly schedule, or a day of the month from 1 "
                          "to 31 for a monthly one.")  # fmt: skip
        elif name == "time":
            out[name] = _("Enter the time as hours and minutes, for example 8:00.")
        elif name == "recipients":
            if code == "email":
                out[name] = _("These are not e-mail addresses: %(bad)s",
                              bad=", ".join(error.bad_recipients))  # fmt: skip
            elif code == "many":
                out[name] = _("At most 20 recipients.")
            else:
                out[name] = _("Enter at least one e-mail address.")
        elif name == "scope":
            out[name] = _("Choose one of the organisation's campaigns, or all of them.")
        elif name == "language":
            out[name] = _("Choose Finnish, Swedish or English.")
    return out


def _form() -> ScheduleForm:
    """The posted form: a weekly schedule's day is the weekday field, a monthly one's the
    day-of-month field (both are on the page)."""
    values = {name: request.form.get(name, "") for name in FIELDS}
    if values["frequency"] == "weekly":
        values["day"] = request.form.get("weekday", "")
    return ScheduleForm(**values)


def _choices() -> dict[str, Any]:
    day_options = [(str(n), name) for n, name in enumerate(weekdays())]
    month_days = [(str(n), str(n)) for n in range(1, 32)]
    scope = [(ALL, _("All campaigns and inbound lines of the organisation"))]
    scope += [(cid, name) for cid, name in schedules().campaigns(actor())]
    return {
        "frequencies": [("monthly", _("Monthly")), ("weekly", _("Weekly"))],
        "weekdays": day_options,
        "month_days": month_days,
        "scopes": scope,
        "languages": [(code, name) for code, name in LANGUAGE_NAMES.items()],
    }


def _page(template: str, form: ScheduleForm, errors: dict[str, str], status: int,
          **extra: Any) -> Any:  # fmt: skip
    return render_template(template, form=form, errors=errors, labels=labels(),
                           **_choices(), **extra), status  # fmt: skip


@bp.route("/")
@requires(Role.MANAGER)
def index(org_id: str) -> Any:
    return render_template("schedules/index.html", schedules=schedules().all(actor()),
                           when=when, status_name=status_name)  # fmt: skip


@bp.route("/new", methods=["GET", "POST"])
@requires(Role.MANAGER)
def new(org_id: str) -> Any:
    form = ScheduleForm("", "monthly", "1", "8:00", ALL, "", "fi")
    if request.method == "POST":
        form = _form()
        try:
            made = schedules().create(actor(), form)
        except ScheduleError as exc:
            return _page("schedules/form.html", form, messages(exc), 400, schedule=None)
        flash(_("The schedule %(name)s was added.", name=made.name))
        return redirect(url_for("schedules.show", org_id=org_id, schedule_id=made.id))
    return _page("schedules/form.html", form, {}, 200, schedule=None)


@bp.route("/<schedule_id>", methods=["GET"])
@requires(Role.MANAGER)
def show(org_id: str, schedule_id: str) -> Any:
    schedule = schedules().get(actor(), schedule_id)
    return render_template("schedules/show.html", schedule=schedule,
                           sends=schedules().history(actor(), schedule_id),
                           when=when, status_name=status_name,
                           language_names=LANGUAGE_NAMES)  # fmt: skip


@bp.route("/<schedule_id>/edit", methods=["GET", "POST"])
@requires(Role.MANAGER)
def edit(org_id: str, schedule_id: str) -> Any:
    schedule = schedules().get(actor(), schedule_id)
    form = schedule.form()
    if request.method == "POST":
        form = _form()
        try:
            changed = schedules().update(actor(), schedule_id, form)
        except ScheduleError as exc:
            return _page("schedules/form.html", form, messages(exc), 400, schedule=schedule)
        flash(_("The schedule %(name)s was saved.", name=changed.name))
        return redirect(url_for("schedules.show", org_id=org_id, schedule_id=schedule_id))
    return _page("schedules/form.html", form, {}, 200, schedule=schedule)


@bp.route("/<schedule_id>/enabled", methods=["POST"])
@requires(Role.MANAGER)
def enabled(org_id: str, schedule_id: str) -> Any:
    on = request.form.get("enabled") == "1"
    changed = schedules().set_enabled(actor(), schedule_id, on)
    flash(_("The schedule %(name)s is on.", name=changed.name) if on
          else _("The schedule %(name)s is off: nothing is sent until it is turned on.",
                 name=changed.name))  # fmt: skip
    return redirect(url_for("schedules.show", org_id=org_id, schedule_id=schedule_id))


@bp.route("/<schedule_id>/send", methods=["POST"])
@requires(Role.MANAGER)
def send(org_id: str, schedule_id: str) -> Any:
    done = schedules().send_now(actor(), schedule_id)
    if done.status == "sent":
        flash(_("The report was sent to %(n)s recipients.", n=len(done.recipients)))
    else:
        flash(_("The report could not be sent: %(error)s. It is tried again automatically; "
                "the history below shows each try.", error=done.error or ""))  # fmt: skip
    return redirect(url_for("schedules.show", org_id=org_id, schedule_id=schedule_id))


@bp.route("/<schedule_id>/delete", methods=["POST"])
@requires(Role.MANAGER)
def delete(org_id: str, schedule_id: str) -> Any:
    schedule = schedules().get(actor(), schedule_id)
    schedules().delete(actor(), schedule_id)
    flash(_("The schedule %(name)s was deleted.", name=schedule.name))
    return redirect(url_for("schedules.index", org_id=org_id))

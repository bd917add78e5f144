"""A campaign's public page (no login) and the page where a manager writes it.

- ``/p/<public_slug>``: anyone. Who is calling and why, the calling period and hours, the
  number that will call, the questions in Finnish and Swedish, calling in, refusing further
  calls, the data-protection notice. In the campaign's default language, or ``?lang=sv``
  (fi, sv, en). Nothing about any resident. No JavaScript; cacheable for a few minutes.
- ``/o/<org_id>/campaigns/<campaign_id>/public-page``: a manager edits the texts and
  publishes or withdraws the page (audited as ``campaign.public_page``).
"""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_babel import force_locale, format_date, format_decimal
from flask_babel import gettext as _

from ivr.campaigns import public_info
from ivr.campaigns.errors import INVALID_NUMBER, REQUIRED, TOO_LONG, FieldProblem
from ivr.campaigns.public_info import LANGUAGES, PublicInfoInvalid
from ivr.campaigns.public_page import PublicPages
from ivr.store.org_models import Role
from ivr.web.access import actor, public, requires, services
from ivr.web.i18n import LANGUAGE_NAMES

bp = Blueprint("public", __name__)
CACHE_SECONDS: Final = 300  # a changed page reaches visitors within five minutes


def pages() -> PublicPages:
    shared = services()
    return PublicPages(shared.factory, shared.clock)


@bp.app_template_filter("euro_price")
def euro_price(value: float | None) -> str:
    """A price per minute in the user's locale with up to 4 decimals (0,0125)."""
    return "–" if value is None else str(format_decimal(value, "#,##0.00##"))


# --------------------------------------------------------------------------- the public page
def _day(value: Any, language: str) -> str:
    if value is None:
        return ""
    return str(format_date(value, "d MMMM yyyy" if language == "en" else "d.M.yyyy"))


@bp.route("/p/<public_slug>")
@public
def page(public_slug: str) -> Any:
    view = pages().view(public_slug)
    asked = request.args.get("lang", "")
    language = asked if asked in LANGUAGES else view.default_language
    try:
        hours = public_info.hours_in_words(view.windows, language)
    except ValueError:
        hours = []
    canonical = url_for("public.page", public_slug=view.slug, _external=True)
    if language != view.default_language:
        canonical = url_for("public.page", public_slug=view.slug, lang=language, _external=True)
    shown = [
        lang for lang in ("fi", "sv") if lang in view.flow_languages or not view.flow_languages
    ]
    shown += [lang for lang in view.flow_languages if lang not in shown]
    shown.sort(key=lambda lang: lang != language)  # the page's own language first
    with force_locale(language):
        body = render_template(
            "public/page.html",
            view=view,
            info=view.info,
            language=language,
            hours=hours,
            caller=public_info.display_number(view.caller_id),
            inbound=public_info.display_number(view.info.inbound_number),
            start=_day(view.info.period_start, language),
            end=_day(view.info.period_end, language),
            canonical=canonical,
            question_languages=shown,
            languages=LANGUAGE_NAMES,
            tel=public_info.tel_uri,
        )
    response = make_response(body)
    response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    response.headers["Content-Language"] = language
    return response


# --------------------------------------------------------------------------- editing
def labels() -> dict[str, str]:
    names = {"fi": _("in Finnish"), "sv": _("in Swedish"), "en": _("in English")}
    found = {
        "enabled": _("Publish the page"),
        "period_start": _("Calling starts on"),
        "period_end": _("Calling ends on"),
        "inbound_number": _("Number for calling in"),
        "contact": _("Contact for refusing calls and for questions"),
        "controller": _("Controller and its contact details"),
    }
    for lang in LANGUAGES:
        found[f"purpose_{lang}"] = _("Why we call, %(language)s", language=names[lang])
        found[f"privacy_{lang}"] = _("Data-protection notice, %(language)s", language=names[lang])
    return {k: str(v) for k, v in found.items()}


def message(problem: FieldProblem) -> str:
    code = problem.code
    if code == REQUIRED:
        return str(_("A published page needs this. Fill it in, or do not publish the page yet."))
    if code == TOO_LONG:
        return str(_("The text is too long: %(detail)s", detail=problem.message))
    if code == public_info.INVALID_DATE:
        return str(_("Enter a date such as 1.3.2027."))
    if code == public_info.END_BEFORE_START:
        return str(_("The end cannot be before the start."))
    if code == INVALID_NUMBER:
        return str(_("The number is not a phone number: %(detail)s", detail=problem.message))
    return problem.message


@bp.route("/o/<org_id>/campaigns/<campaign_id>/public-page", methods=["GET", "POST"])
@requires(Role.MANAGER)
def edit(org_id: str, campaign_id: str) -> Any:
    editing = pages().editing(actor(), campaign_id)
    values = editing.info.form_values()
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {name: request.form.get(name, "") for name in public_info.FIELDS}
        try:
            info = public_info.check(values, default_language=editing.default_language)
        except PublicInfoInvalid as exc:
            errors = {name: message(p) for name, p in exc.by_field().items()}
        else:
            saved = pages().save(actor(), campaign_id, info)
            if info.enabled:
                flash(_("The public page is published."), "ok")
            else:
                flash(_("The changes were saved. The page is not published."), "ok")
            if saved.inbound_not_a_line:
                flash(
                    _(
                        "The number for calling in is not one of your organisation's inbound "
                        "lines here. Check that residents reach the survey by calling it."
                    ),
                    "warning",
                )
            return redirect(url_for("public.edit", org_id=org_id, campaign_id=campaign_id), 303)
    address = None
    if editing.slug:
        address = url_for("public.page", public_slug=editing.slug, _external=True)
    return render_template(
        "public/edit.html",
        editing=editing,
        values=values,
        errors=errors,
        labels=labels(),
        address=address,
        languages=LANGUAGES,
    ), (400 if errors else 200)

"""Campaign pages: the list, creating (with a "check your answers" step) and editing a
campaign, and a campaign's page with its live progress. The actions (contacts, start,
pause, resume, stop) are in ``campaign_actions``, on the same blueprint.

Every view calls ``CampaignAdmin`` (the same services as ``ivr campaign``) with the
request's actor: the organisation scope, the roles and the audit log are the service's.
Another organisation's campaign is ``NotFound`` there, a 404 here.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from ivr.campaigns.admin import CampaignAdmin
from ivr.campaigns.errors import CampaignAdminError, CampaignInvalid
from ivr.store.org_models import Role
from ivr.web import campaign_progress
from ivr.web.access import actor, org, requires, services
from ivr.web.campaign_form import (
    CampaignForm,
    labels,
    language_names,
    outcome_name,
    refusal,
    status_name,
)

bp = Blueprint("campaigns", __name__, url_prefix="/o/<org_id>/campaigns")


@bp.app_template_global()
def campaign_status_name(status: str) -> str:
    return status_name(status)


@bp.app_template_global()
def campaign_outcome_name(outcome: str) -> str:
    return outcome_name(outcome)


def admin() -> CampaignAdmin:
    return services().campaigns


def can_change() -> bool:
    return org().role.allows(Role.MANAGER)


# --------------------------------------------------------------------------- the list
@bp.route("/")
@requires(Role.REVIEWER)
def index(org_id: str) -> Any:
    page = admin().page(actor(), before=request.args.get("before"), after=request.args.get("after"))
    return render_template("campaigns/index.html", page=page, can_change=can_change())


# --------------------------------------------------------------------------- create
def _form_page(template: str, form: CampaignForm, **context: Any) -> Any:
    flows = admin().flow_choices(actor())
    status = 400 if form.errors else 200
    return (
        render_template(
            template,
            form=form,
            errors=form.ordered_errors(),
            labels=labels(),
            flows=flows,
            languages=language_names(),
            **context,
        ),
        status,
    )


@bp.route("/new", methods=["GET", "POST"])
@requires(Role.MANAGER)
def new(org_id: str) -> Any:
    """The form; posted, its summary to check ("check your answers"); confirmed, the
    campaign. "Change" on the summary brings the form back as it was."""
    if request.method == "GET":
        return _form_page("campaigns/form.html", CampaignForm.blank(org().language))
    form = CampaignForm.read(request.form)
    settings = form.settings()
    if request.form.get("change"):
        return _form_page("campaigns/form.html", form)
    name, flow = form.values["name"], form.values["flow"]
    try:
        if form.errors:  # not numbers: the rest is checked too, to show every problem
            admin().check(actor(), name, flow, settings)
            return _form_page("campaigns/form.html", form)
        if request.form.get("confirm"):
            created = admin().create(actor(), name, flow, settings)
        else:
            warnings = admin().check(actor(), name, flow, settings)
            flow_label = next(
                (f.label for f in admin().flow_choices(actor()) if f.value == flow), flow
            )
            return render_template(
                "campaigns/check.html",
                form=form,
                settings=settings,
                warnings=warnings,
                labels=labels(),
                flow_label=flow_label,
                languages=dict(language_names()),
            )
    except CampaignInvalid as exc:
        form.add(exc)
        return _form_page("campaigns/form.html", form)
    flash(_("Campaign %(name)s created. Next, upload its contacts.", name=created.name), "ok")
    for warning in created.warnings:
        flash(warning, "warning")
    return redirect(url_for("campaigns.show", org_id=org_id, campaign_id=created.id), 303)


# --------------------------------------------------------------------------- edit
@bp.route("/<campaign_id>/edit", methods=["GET", "POST"])
@requires(Role.MANAGER)
def edit(org_id: str, campaign_id: str) -> Any:
    """Change a draft's settings, or a paused or completed campaign's (all but its flow);
    a running campaign must be paused first, a stopped one is final."""
    detail = admin().detail(actor(), campaign_id)
    if request.method == "GET":
        form = CampaignForm.of(detail.name, detail.flow_value, detail.settings)
        return _form_page("campaigns/form.html", form, detail=detail)
    form = CampaignForm.read(request.form)
    if not detail.flow_editable:
        form.values["flow"] = detail.flow_value  # shown, not posted
    settings = form.settings()
    name = form.values["name"]
    flow = form.values["flow"] if detail.flow_editable else None
    try:
        if form.errors and detail.editable:  # every other problem too, changing nothing
            admin().check(actor(), name, flow, settings, campaign_id=detail.id)
            return _form_page("campaigns/form.html", form, detail=detail)
        # Not editable now (running, stopped): the service refuses and says why.
        warnings = admin().update(actor(), detail.id, settings, name=name, flow=flow)
    except CampaignInvalid as exc:
        form.add(exc)
        return _form_page("campaigns/form.html", form, detail=detail)
    except CampaignAdminError as exc:
        flash(refusal(exc), "error")
        return redirect(url_for("campaigns.show", org_id=org_id, campaign_id=detail.id), 303)
    flash(_("The changes were saved."), "ok")
    for warning in warnings:
        flash(warning, "warning")
    return redirect(url_for("campaigns.show", org_id=org_id, campaign_id=detail.id), 303)


# --------------------------------------------------------------------------- one campaign
@bp.route("/<campaign_id>")
@requires(Role.REVIEWER)
def show(org_id: str, campaign_id: str) -> Any:
    detail = admin().detail(actor(), campaign_id)
    progress = admin().progress(actor(), campaign_id)
    text = campaign_progress.texts(progress)
    return render_template(
        "campaigns/show.html",
        detail=detail,
        progress=progress,
        text=text,
        announce=f"{text['status']}. {text['why']}",
        outcomes=campaign_progress.outcome_rows(progress),
        count_labels=campaign_progress.count_labels(),
        labels=labels(),
        languages=dict(language_names()),
        can_change=can_change(),
    )


@bp.route("/<campaign_id>/progress.json")
@requires(Role.REVIEWER)
def progress_json(org_id: str, campaign_id: str) -> Any:
    """The live progress, polled by static/js/progress.js (with ``X-Ivr-Poll: 1``, so that
    polling does not keep an idle session alive)."""
    progress = admin().progress(actor(), campaign_id)
    return jsonify(campaign_progress.as_json(progress))


from ivr.web import campaign_actions  # noqa: E402,F401  (its views join this blueprint)

"""What a manager does to a campaign: upload contacts (and see each rejected row), start,
pause, resume and stop it (stop asks first, on a page of its own: it is final). Views of
the ``campaigns`` blueprint; each calls the campaign service, which checks the role and
the organisation and writes the audit entry."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ivr.campaigns.contacts import CSV_SUFFIXES, XLSX_SUFFIXES
from ivr.campaigns.errors import CampaignAdminError, CampaignInvalid, FieldProblem
from ivr.store.org_models import Role
from ivr.web.access import actor, requires
from ivr.web.campaign_form import NO_FILE, labels, message, refusal
from ivr.web.campaigns import admin, bp

SUFFIXES = frozenset(s for s in CSV_SUFFIXES | XLSX_SUFFIXES if s)
ACCEPT = ",".join(sorted(SUFFIXES))


def _back(org_id: str, campaign_id: str) -> Any:
    return redirect(url_for("campaigns.show", org_id=org_id, campaign_id=campaign_id), 303)


# --------------------------------------------------------------------------- contacts
@bp.route("/<campaign_id>/contacts", methods=["GET", "POST"])
@requires(Role.MANAGER)
def contacts(org_id: str, campaign_id: str) -> Any:
    """Upload a contact list (CSV or XLSX); the page then shows how many were accepted,
    how many were duplicates, and each rejected row with its line and reason."""
    detail = admin().detail(actor(), campaign_id)
    errors: dict[str, str] = {}
    report = None
    status = 200
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            errors["file"] = message(FieldProblem("file", NO_FILE, ""))
        else:
            original = Path(upload.filename).name
            suffix = Path(original).suffix.lower()
            with tempfile.TemporaryDirectory(prefix="ivr-upload-") as folder:
                # Our own name (the user's may be anything); its suffix tells CSV from XLSX.
                path = Path(folder) / f"upload{suffix if suffix in SUFFIXES else ''}"
                upload.save(path)
                try:
                    report = admin().import_contacts(actor(), detail.id, path, filename=original)
                except CampaignInvalid as exc:
                    errors.update({k: message(p) for k, p in exc.by_field().items()})
                except CampaignAdminError as exc:
                    flash(refusal(exc), "error")
                    return _back(org_id, detail.id)
            if report is not None:
                detail = admin().detail(actor(), campaign_id)  # the new count
        status = 400 if errors else 200
    return (
        render_template(
            "campaigns/contacts.html",
            detail=detail,
            report=report,
            errors=errors,
            labels=labels(),
            accept=ACCEPT,
        ),
        status,
    )


# --------------------------------------------------------------------------- status
@bp.route("/<campaign_id>/start", methods=["POST"])
@requires(Role.MANAGER)
def start(org_id: str, campaign_id: str) -> Any:
    try:
        note = admin().start(actor(), campaign_id)
    except CampaignAdminError as exc:
        flash(refusal(exc), "error")
    else:
        if note == "already running":
            flash(_("The campaign was already running."), "ok")
        else:
            flash(_("The campaign has started."), "ok")
    return _back(org_id, campaign_id)


@bp.route("/<campaign_id>/pause", methods=["POST"])
@requires(Role.MANAGER)
def pause(org_id: str, campaign_id: str) -> Any:
    try:
        admin().pause(actor(), campaign_id)
    except CampaignAdminError as exc:
        flash(refusal(exc), "error")
    else:
        flash(_("The campaign is paused. Calls on the line finish; no new calls start."), "ok")
    return _back(org_id, campaign_id)


@bp.route("/<campaign_id>/resume", methods=["POST"])
@requires(Role.MANAGER)
def resume(org_id: str, campaign_id: str) -> Any:
    try:
        admin().resume(actor(), campaign_id)
    except CampaignAdminError as exc:
        flash(refusal(exc), "error")
    else:
        flash(_("The campaign is running again."), "ok")
    return _back(org_id, campaign_id)


@bp.route("/<campaign_id>/stop", methods=["GET", "POST"])
@requires(Role.MANAGER)
def stop(org_id: str, campaign_id: str) -> Any:
    """GET: "are you sure?" (stopping is final), without JavaScript; POST: stop."""
    detail = admin().detail(actor(), campaign_id)
    if request.method == "GET":
        return render_template("campaigns/stop.html", detail=detail)
    try:
        admin().stop(actor(), detail.id)
    except CampaignAdminError as exc:
        flash(refusal(exc), "error")
    else:
        flash(_("The campaign has been stopped."), "ok")
    return _back(org_id, detail.id)

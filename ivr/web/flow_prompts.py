"""A flow's prompts: recorded (uploaded) or synthetic per language, uploading a recording
and playing it back, and the preview that plays every prompt as the caller will hear it.

Audio is served only through routes that check the user's organisation (the flow must be
theirs, and an uploaded prompt's name must carry their organisation's prefix).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import redirect, render_template, request, send_file
from flask_babel import gettext as _

from ivr.accounts.audit import Forbidden, NotFound
from ivr.flows.library import PreviewError, PromptRefused
from ivr.speech import prompt_audio
from ivr.store.org_models import Role
from ivr.web.access import actor, requires
from ivr.web.flow_messages import part_name
from ivr.web.flows import bp, get_flow, library, refuse, url_for


def _audio(file: Path) -> Any:
    response = send_file(file, mimetype="audio/wav", conditional=True, max_age=0)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# --------------------------------------------------------------------------- the list
@bp.route("/<flow_id>/prompts")
@requires(Role.REVIEWER)
def prompts(org_id: str, flow_id: str) -> Any:
    record = get_flow(flow_id)
    rows = library().prompts(actor(), flow_id)
    return render_template("flows/prompts.html", record=record, rows=rows, part_name=part_name)


# --------------------------------------------------------------------------- one prompt
@bp.route("/<flow_id>/prompts/<path>/<language>", methods=["GET", "POST"])
@requires(Role.REVIEWER)
def prompt(org_id: str, flow_id: str, path: str, language: str) -> Any:
    record = get_flow(flow_id)
    try:
        row = library().prompt(actor(), flow_id, path, language)
    except (NotFound, Forbidden) as exc:
        refuse(exc)
    error = ""
    status = 200
    if request.method == "POST":
        try:
            actor().require(Role.MANAGER)
        except Forbidden as exc:
            refuse(exc)
        file = request.files.get("file")
        if file is None or not file.filename:
            error = _("Choose a recording to upload.")
        else:
            suffix = Path(file.filename).suffix.lower()[:8]
            with tempfile.TemporaryDirectory(prefix="ivr-upload-") as tmp:
                saved = Path(tmp) / f"upload{suffix}"
                file.save(saved)
                try:
                    library().upload_prompt(actor(), flow_id, path, language, saved, file.filename)
                except PromptRefused as exc:
                    error = _(
                        "The recording %(name)s cannot be used: %(reason)s",
                        name=file.filename,
                        reason=exc.reason,
                    )
                except (NotFound, Forbidden) as exc:
                    refuse(exc)
                else:
                    return redirect(
                        url_for(
                            "flows.prompt",
                            org_id=org_id,
                            flow_id=flow_id,
                            path=path,
                            language=language,
                            done="uploaded",
                        )
                    )
        status = 400
    cell = row.cell(language)
    return render_template(
        "flows/prompt.html",
        record=record,
        row=row,
        cell=cell,
        language=language,
        error=error,
        uploaded=request.args.get("done") == "uploaded",
        accepted=prompt_audio.ACCEPTED_NAMES,
        max_seconds=library().settings.prompts.max_seconds,
        part_name=part_name,
    ), status


@bp.route("/<flow_id>/prompts/<path>/<language>/recording.wav")
@requires(Role.REVIEWER)
def recording(org_id: str, flow_id: str, path: str, language: str) -> Any:
    try:
        file = library().recording(actor(), flow_id, path, language)
    except (NotFound, Forbidden) as exc:
        refuse(exc)
    return _audio(file)


# --------------------------------------------------------------------------- preview
@bp.route("/<flow_id>/preview")
@requires(Role.REVIEWER)
def preview(org_id: str, flow_id: str) -> Any:
    record = get_flow(flow_id)
    error = ""
    found = None
    try:
        found = library().preview(actor(), flow_id)
    except PreviewError as exc:
        error = _("The preview could not be made: %(reason)s", reason=str(exc))
    except (NotFound, Forbidden) as exc:
        refuse(exc)
    return render_template(
        "flows/preview.html", record=record, preview=found, error=error, part_name=part_name
    ), (503 if error else 200)


@bp.route("/<flow_id>/preview/<path>/<language>.wav")
@requires(Role.REVIEWER)
def preview_audio(org_id: str, flow_id: str, path: str, language: str) -> Any:
    try:
        file = library().preview_file(actor(), flow_id, path, language)
    except (NotFound, Forbidden) as exc:
        refuse(exc)
    if not file.is_file():
        refuse(NotFound("rendered file missing"))
    return _audio(file)

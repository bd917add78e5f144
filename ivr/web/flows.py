"""Call-flow pages: the list, a flow's page, a new flow, uploading a flow file (new, or a new
version of a flow), the YAML, deleting. The form editor is in :mod:`ivr.web.flow_editor`,
the prompts, recordings and preview in :mod:`ivr.web.flow_prompts`; all on this blueprint.

Every page goes through :class:`ivr.flows.library.FlowLibrary` with the request's actor:
the organisation and role checks and the audit log live there.
"""

from __future__ import annotations

from typing import Any, NoReturn

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
)
from flask import url_for as _url_for
from flask_babel import gettext as _

from ivr.accounts.audit import Forbidden, NotFound
from ivr.flows import editor
from ivr.flows.library import FlowInUse, FlowLibrary, FlowRecord, read_upload
from ivr.flows.loader import FlowError
from ivr.flows.model import LANGUAGES
from ivr.store.org_models import Role
from ivr.web.access import actor, requires, services
from ivr.web.flow_messages import kind_name, language_names

bp = Blueprint("flows", __name__, url_prefix="/o/<org_id>/flows")

UPLOAD_TEXT_LIMIT = 1024 * 1024


def library() -> FlowLibrary:
    return services().flows


def refuse(exc: Exception) -> NoReturn:
    """Another organisation's flow (or none) is not found; too low a role is forbidden."""
    abort(404 if isinstance(exc, NotFound) else 403)


def get_flow(flow_id: str) -> FlowRecord:
    try:
        return library().get(actor(), flow_id)
    except (NotFound, Forbidden) as exc:
        refuse(exc)


def url_for(endpoint: str, **values: Any) -> str:
    return _url_for(endpoint, **values)


def problem_rows(exc: FlowError) -> list[dict[str, Any]]:
    return [{"line": p.line, "path": p.path, "message": p.message} for p in exc.problems]


@bp.app_template_global()
def flow_kind_name(kind: str) -> str:
    return kind_name(kind)


@bp.app_template_global()
def flow_can_manage() -> bool:
    """Whether the user may change flows in this organisation (the manager role)."""
    found = getattr(g, "org", None)
    return found is not None and bool(found.role.allows(Role.MANAGER))


@bp.app_template_global()
def flow_language_name(language: str) -> str:
    return language_names().get(language, language)


# --------------------------------------------------------------------------- list, view
@bp.route("/")
@requires(Role.REVIEWER)
def index(org_id: str) -> Any:
    flows = library().list_flows(actor())
    return render_template("flows/index.html", flows=flows)


@bp.route("/<flow_id>")
@requires(Role.REVIEWER)
def view(org_id: str, flow_id: str) -> Any:
    record = get_flow(flow_id)
    notice = request.args.get("done", "")
    return render_template("flows/view.html", record=record, notice=notice)


@bp.route("/<flow_id>/yaml")
@requires(Role.REVIEWER)
def yaml_file(org_id: str, flow_id: str) -> Any:
    record = get_flow(flow_id)
    name = f"{record.key}.yaml"
    return Response(
        record.yaml,
        mimetype="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --------------------------------------------------------------------------- new
@bp.route("/new", methods=["GET", "POST"])
@requires(Role.MANAGER)
def new(org_id: str) -> Any:
    errors: dict[str, str] = {}
    name, flow_id, languages = "", "", ["fi", "sv"]
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        flow_id = request.form.get("flow_id", "").strip()
        languages = [x for x in request.form.getlist("languages") if x in LANGUAGES]
        if not name:
            errors["name"] = _("Give the flow a name.")
        if not languages:
            errors["languages-fi"] = _("Choose at least one language.")
        if not errors:
            try:
                made = editor.new_flow(name, languages, flow_id=flow_id or None)
            except ValueError as exc:
                errors["name"] = str(exc)
            else:
                if any(e.field == "id" for e in editor.check_flow(made, loader=False)):
                    errors["flow_id"] = _(
                        "Use 1-64 lowercase letters a-z, digits and '-' in the identifier."
                    )
                else:
                    try:
                        record = library().create(actor(), editor.save_flow(made))
                    except FlowError:
                        errors["flow_id"] = _(
                            "This organisation has a flow with the identifier %(id)s already: "
                            "give another identifier.",
                            id=made.id,
                        )
                    else:
                        return redirect(url_for("flows.edit", org_id=org_id, flow_id=record.id))
    form = {"name": name, "flow_id": flow_id, "languages": languages}
    labels = {
        "name": _("Name"),
        "flow_id": _("Identifier"),
        "languages-fi": _("Languages"),
    }
    status = 400 if errors else 200
    return render_template("flows/new.html", form=form, errors=errors, labels=labels), status


# --------------------------------------------------------------------------- upload
@bp.route("/upload", methods=["GET", "POST"])
@requires(Role.MANAGER)
def upload(org_id: str) -> Any:
    return _upload_page(org_id, None)


@bp.route("/<flow_id>/upload", methods=["GET", "POST"])
@requires(Role.MANAGER)
def upload_version(org_id: str, flow_id: str) -> Any:
    return _upload_page(org_id, get_flow(flow_id))


def _upload_page(org_id: str, record: FlowRecord | None) -> Any:
    problems: list[dict[str, Any]] = []
    error = ""
    pasted = ""
    source = ""
    if request.method == "POST":
        file = request.files.get("file")
        pasted = request.form.get("text", "")
        try:
            if file is not None and file.filename:
                source = file.filename
                text = read_upload(file.read(UPLOAD_TEXT_LIMIT + 1), source)
            elif pasted.strip():
                source = str(_("pasted text"))
                text = pasted
            else:
                text = None
                error = _("Choose a flow file or paste its YAML.")
            if text is not None:
                pasted = text
                done = library().upload(
                    actor(), text, source=source, replace=record.id if record else None
                )
                return redirect(
                    url_for("flows.view", org_id=org_id, flow_id=done.id, done="uploaded")
                )
        except FlowError as exc:
            problems = problem_rows(exc)
            error = _("The flow has %(count)d problems; nothing was saved.", count=len(problems))
            if len(problems) == 1:
                error = _("The flow has a problem; nothing was saved.")
        except (NotFound, Forbidden) as exc:
            refuse(exc)
    status = 400 if error else 200
    return render_template(
        "flows/upload.html",
        record=record,
        problems=problems,
        error=error,
        text=pasted,
        source=source,
    ), status


# --------------------------------------------------------------------------- delete
@bp.route("/<flow_id>/delete", methods=["GET", "POST"])
@requires(Role.MANAGER)
def delete(org_id: str, flow_id: str) -> Any:
    record = get_flow(flow_id)
    error = ""
    if request.method == "POST":
        try:
            library().delete(actor(), flow_id)
        except FlowInUse as exc:
            error = _(
                "Inbound lines answer with this flow (%(numbers)s): give them another flow first.",
                numbers=", ".join(exc.numbers),
            )
        except (NotFound, Forbidden) as exc:
            refuse(exc)
        else:
            return redirect(url_for("flows.index", org_id=org_id))
    return render_template("flows/delete.html", record=record, error=error), (409 if error else 200)


from ivr.web import flow_editor, flow_prompts  # noqa: E402,F401  (their routes join bp)

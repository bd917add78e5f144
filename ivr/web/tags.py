"""The organisation's tags (themes) for open answers: managers add, rename and delete them
and give each a keyboard key 1–9 (the review page's digit keys). Every change is audited
(by the service)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ivr.review.service import ReviewService
from ivr.review.tags import TagInvalid, parse_key
from ivr.store.org_models import Role
from ivr.web.access import actor, requires, services

bp = Blueprint("tags", __name__, url_prefix="/o/<org_id>/tags")


def review() -> ReviewService:
    return services().review


def labels() -> dict[str, str]:
    return {"name": _("Name"), "key": _("Keyboard key")}


def message(error: TagInvalid) -> str:
    messages: dict[str, str] = {
        "name_missing": _("Enter a name for the tag."),
        "name_long": _("The name can be at most 60 characters long."),
        "name_taken": _("The organisation already has a tag with this name."),
        "key_invalid": _("Choose a key from 1 to 9, or none."),
        "key_taken": _("Another tag already has this key. Free that key first."),
    }
    return messages.get(error.code, error.code)


def key_choices() -> list[tuple[str, str]]:
    return [("", _("No key"))] + [(str(n), str(n)) for n in range(1, 10)]


@bp.route("/", methods=["GET", "POST"])
@requires(Role.MANAGER)
def index(org_id: str) -> Any:
    errors: dict[str, str] = {}
    form = {"name": "", "key": ""}
    status = 200
    if request.method == "POST":
        form = {"name": request.form.get("name", ""), "key": request.form.get("key", "")}
        try:
            made = review().add_tag(actor(), form["name"], parse_key(form["key"]))
        except TagInvalid as exc:
            errors[exc.field] = message(exc)
            status = 400
        else:
            flash(_("The tag %(name)s was added.", name=made.name))
            return redirect(url_for("tags.index", org_id=org_id))
    return render_template(
        "tags/index.html",
        tags=review().tags(actor()),
        form=form,
        errors=errors,
        labels=labels(),
        keys=key_choices(),
    ), status


@bp.route("/<int:tag_id>", methods=["GET", "POST"])
@requires(Role.MANAGER)
def edit(org_id: str, tag_id: int) -> Any:
    tag = review().tag(actor(), tag_id)
    errors: dict[str, str] = {}
    form = {"name": tag.name, "key": "" if tag.key is None else str(tag.key)}
    status = 200
    if request.method == "POST":
        form = {"name": request.form.get("name", ""), "key": request.form.get("key", "")}
        try:
            changed = review().change_tag(actor(), tag_id, form["name"], parse_key(form["key"]))
        except TagInvalid as exc:
            errors[exc.field] = message(exc)
            status = 400
        else:
            flash(_("The tag %(name)s was saved.", name=changed.name))
            return redirect(url_for("tags.index", org_id=org_id))
    return render_template(
        "tags/edit.html", tag=tag, form=form, errors=errors, labels=labels(), keys=key_choices()
    ), status


@bp.route("/<int:tag_id>/delete", methods=["GET", "POST"])
@requires(Role.MANAGER)
def delete(org_id: str, tag_id: int) -> Any:
    tag = review().tag(actor(), tag_id)
    if request.method == "POST":
        name = review().delete_tag(actor(), tag_id)
        flash(_("The tag %(name)s was deleted.", name=name))
        return redirect(url_for("tags.index", org_id=org_id))
    return render_template("tags/delete.html", tag=tag)

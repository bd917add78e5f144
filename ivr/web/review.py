"""The transcript review queue: the filtered list of open answers (works without
JavaScript), one answer's page with its context, player and correction form, and the
answer's audio behind a short-lived link signed for the user (every listen audited).

The queue's filter and order travel in the query string from the list to each item and on
to the next, so "Save and next" follows the queue the reviewer chose.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _

from ivr.review import audio
from ivr.review.service import ReviewService
from ivr.review.tags import TagView
from ivr.review.words import QueueFilter, band_of, decode_cursor
from ivr.store.org_models import Role
from ivr.web.access import actor, requires, services
from ivr.web.campaign_form import language_names

bp = Blueprint("review", __name__, url_prefix="/o/<org_id>/review")


def review() -> ReviewService:
    return services().review


def state_names() -> dict[str, str]:
    return {
        "new": _("Not reviewed"),
        "reviewed": _("Reviewed"),
        "second_look": _("Needs a second look"),
    }


def band_names() -> dict[str, str]:
    return {
        "low": _("Low (under 0.5)"),
        "mid": _("Medium (0.5–0.8)"),
        "high": _("High (0.8 or more)"),
    }


def order_names() -> dict[str, str]:
    return {
        "oldest": _("Oldest first"),
        "confidence": _("Lowest confidence first"),
        "random": _("Random sample"),
    }


def field_names() -> dict[str, str]:
    return {
        "corrected_text": _("Corrected text"),
        "review_state": _("State"),
        "tags": _("Tags"),
    }


@bp.app_template_global()
def review_state_name(state: str) -> str:
    return state_names().get(state, state)


@bp.app_template_global()
def language_name(code: str) -> str:
    return dict(language_names()).get(code, code)


def language_choices(codes: list[str]) -> list[tuple[str, str]]:
    known = dict(language_names())
    return [(c, known.get(c, c)) for c in sorted(set(codes) | set(known))]


def tag_choices(tags: list[TagView]) -> list[tuple[str, str]]:
    return [(str(t.id), t.name) for t in tags]


def _to(page: str, org_id: str, f: QueueFilter, transcript_id: int | None = None) -> str:
    """The queue (``index``) or an answer (``item``) with the queue's filter and order."""
    values: dict[str, Any] = dict(f.args())
    if transcript_id is not None:
        values["transcript_id"] = transcript_id
    return url_for(f"review.{page}", org_id=org_id, **values)


# --------------------------------------------------------------------------- the queue
@bp.route("/")
@requires(Role.REVIEWER)
def index(org_id: str) -> Any:
    f = QueueFilter.from_args(request.args)
    cursor = decode_cursor(request.args.get("after"), f.order)
    view = review().queue(actor(), f, cursor)
    return render_template(
        "review/index.html",
        f=f,
        view=view,
        first_page=cursor is not None,
        states=state_names(),
        bands=band_names(),
        orders=order_names(),
        band_of=band_of,
        language_choices=language_choices,
        tag_choices=tag_choices,
    )


# --------------------------------------------------------------------------- one answer
@bp.route("/<int:transcript_id>", methods=["GET", "POST"])
@requires(Role.REVIEWER)
def item(org_id: str, transcript_id: int) -> Any:
    f = QueueFilter.from_args(request.args)
    if request.method == "POST":
        return _save(org_id, transcript_id, f)
    found = review().item(actor(), transcript_id)
    token = review().audio_token(actor(), transcript_id)
    return render_template(
        "review/item.html",
        f=f,
        item=found,
        audio_url=url_for("review.audio", org_id=org_id, transcript_id=transcript_id, t=token),
        download_url=url_for(
            "review.audio", org_id=org_id, transcript_id=transcript_id, t=token, download=1
        ),
        states=state_names(),
        fields=field_names(),
        link_minutes=max(1, review().link_seconds // 60),
    )


def _save(org_id: str, transcript_id: int, f: QueueFilter) -> Any:
    action = request.form.get("action", "reviewed")
    state = {"reviewed": "reviewed", "second_look": "second_look"}.get(action)
    if state is None:  # "save": keep the state
        state = review().item(actor(), transcript_id).row.review_state
    tag_ids = {int(v) for v in request.form.getlist("tags") if v.isdigit() and len(v) < 12}
    corrected = request.form.get("corrected_text", "")
    changed = review().save(
        actor(), transcript_id, corrected=corrected, state=state, tag_ids=tag_ids
    )
    message = _("Saved.") if changed else _("No changes to save.")
    if action == "save":
        flash(message)
        return redirect(_to("item", org_id, f, transcript_id))
    following = review().next_id(actor(), transcript_id, f)
    what = _("Marked reviewed.") if state == "reviewed" else _("Marked for a second look.")
    if following is None:
        flash(what + " " + _("There are no more answers in this queue."))
        return redirect(_to("index", org_id, f))
    flash(what)
    return redirect(_to("item", org_id, f, following))


@bp.route("/<int:transcript_id>/next")
@requires(Role.REVIEWER)
def skip(org_id: str, transcript_id: int) -> Any:
    """Skip to the next answer in the queue without saving."""
    f = QueueFilter.from_args(request.args)
    following = review().next_id(actor(), transcript_id, f)
    if following is None or following == transcript_id:
        flash(_("There are no more answers in this queue."))
        return redirect(_to("index", org_id, f))
    return redirect(_to("item", org_id, f, following))


# --------------------------------------------------------------------------- the audio
@bp.route("/<int:transcript_id>/audio", endpoint="audio")
@requires(Role.REVIEWER)
def audio_file(org_id: str, transcript_id: int) -> Any:
    token = request.args.get("t", "")
    found = review().audio(actor(), transcript_id)  # 404 for another organisation's
    if not token:
        # No link: the answer's page gives one (signed for this user, short-lived).
        return redirect(url_for("review.item", org_id=org_id, transcript_id=transcript_id))
    if review().check_token(actor(), transcript_id, token) is not None:
        abort(403)
    download = request.args.get("download") == "1"
    if download or audio.first_chunk(request.headers.get("Range")):
        review().log_listen(actor(), found, download=download)
    response = send_file(
        found.path,
        mimetype="audio/wav",
        conditional=True,
        max_age=0,
        as_attachment=download,
        download_name=f"answer-{transcript_id}.wav",
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response

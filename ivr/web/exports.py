"""A campaign's downloads (manager and up): the exports page and the files, streamed.

``/o/<org>/campaigns/<campaign>/exports`` lists them; ``.../export/<format>`` sends one:
``csv`` and ``xlsx`` (``?layout=long`` for one row per answer, ``?values=labels`` for
option labels instead of stored values, ``?phone=1`` adds phone numbers: admins only),
``sav`` (SPSS), ``codebook`` (CSV) and ``dataset`` (the reviewed transcripts with their
audio, a ZIP). Every download is in the audit log (``export.download`` with the format)
before its first byte; the body is a generator, written while it is sent and read from
the database in chunks (in a session of its own).
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, render_template, request

from ivr.exports.service import Exports, Target
from ivr.store.org_models import Role
from ivr.web.access import actor, requires, services

bp = Blueprint("exports", __name__, url_prefix="/o/<org_id>/campaigns/<campaign_id>")

MIMETYPES = {
    "csv": "text/csv; charset=utf-8",
    "codebook": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "sav": "application/x-spss-sav",
    "dataset": "application/zip",
}
READ_CHUNK = 64 * 1024


def _exports() -> Exports:
    return services().exports


def ascii_name(name: str) -> str:
    """A file name part in plain ASCII (ä → a), without characters a file system or a
    header would trip on."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    kept = "".join(c if c.isalnum() or c in "-_." else "-" for c in plain).strip("-.")
    return "-".join(part for part in kept.split("-") if part) or "campaign"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII file name and the UTF-8 one (RFC 6266 / 5987)."""
    stem, dot, suffix = filename.rpartition(".")
    fallback = f"{ascii_name(stem)}.{ascii_name(suffix)}" if dot else ascii_name(filename)
    safe = filename.replace("/", "-").replace("\\", "-")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(safe, safe='')}"


def filename(target: Target, export_format: str, long: bool) -> str:
    name = target.name.replace("/", "-").replace("\\", "-").strip() or "campaign"
    if export_format in ("csv", "xlsx"):
        return f"{name} - {'answers' if long else 'contacts'}.{export_format}"
    return {
        "sav": f"{name}.sav",
        "codebook": f"{name} - codebook.csv",
        "dataset": f"{name} - speech dataset.zip",
    }[export_format]


@bp.route("/exports")
@requires(Role.MANAGER)
def page(org_id: str, campaign_id: str) -> Any:
    target = _exports().target(actor(), campaign_id)
    return render_template(
        "exports/index.html",
        target=target,
        reviewed=_exports().reviewed_count(target),
    )


@bp.route("/export/<any(csv, xlsx, sav, codebook, dataset):export_format>")
@requires(Role.MANAGER)
def download(org_id: str, campaign_id: str, export_format: str) -> Any:
    long = request.args.get("layout") == "long"
    labels = request.args.get("values") == "labels"
    with_phone = request.args.get("phone") == "1"
    detail: dict[str, Any] = {}
    if export_format in ("csv", "xlsx"):
        detail = {"layout": "long" if long else "wide", "values": "labels" if labels else "codes"}
    if with_phone and export_format in ("csv", "xlsx", "sav") and not long:
        detail["with_phone"] = True
    else:
        with_phone = False
    exports = _exports()
    target = exports.open(actor(), campaign_id, export_format, **detail)
    body: Iterator[bytes]
    if export_format == "csv":
        body = exports.csv(target, long=long, labels=labels, with_phone=with_phone)
    elif export_format == "xlsx":
        body = exports.xlsx(target, long=long, labels=labels, with_phone=with_phone)
    elif export_format == "sav":
        body = _sav(exports, target, with_phone)
    elif export_format == "codebook":
        body = exports.codebook(target)
    else:
        body = exports.dataset_zip(target)
    # The body needs no request context (it holds the service and the target it was given),
    # so it is streamed as a plain generator: a client that goes away closes it cleanly.
    response = Response(body, mimetype=MIMETYPES[export_format])
    response.headers["Content-Disposition"] = content_disposition(
        filename(target, export_format, long)
    )
    return response


def _sav(exports: Exports, target: Target, with_phone: bool) -> Iterator[bytes]:
    """The ``.sav`` through a temporary file (pyreadstat writes to a path), then sent."""
    handle, name = tempfile.mkstemp(suffix=".sav")
    os.close(handle)
    path = Path(name)
    try:
        exports.write_sav(target, path, with_phone=with_phone)
        with path.open("rb") as made:
            while data := made.read(READ_CHUNK):
                yield data
    finally:
        path.unlink(missing_ok=True)

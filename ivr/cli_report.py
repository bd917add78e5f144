"""`ivr report CAMPAIGN`: a campaign's report and exports on the command line (the same
services as the web UI's downloads, acting as ``Actor.cli``; every run is in the audit log
as ``export.download``).

    ivr report CAMPAIGN [--org NAME]                   the report's numbers as JSON
    ivr report CAMPAIGN --format csv|xlsx [--long] [--labels] [-o FILE]
    ivr report CAMPAIGN --format sav -o FILE.sav       SPSS, and FILE-codebook.csv beside it
    ivr report CAMPAIGN --dataset DIR                  reviewed transcripts + audio + manifest

Without ``-o`` the file goes to standard output (not XLSX or SPSS to a terminal). A file is
written under a temporary name and renamed when complete: a failed export leaves nothing
half-written. Exit codes: 0 done, 2 a wrong argument, an unknown campaign or organisation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.accounts.audit import Actor
    from ivr.exports.service import Exports

FORMATS = ("json", "csv", "xlsx", "sav")


def _fail(message: str) -> int:
    print(f"ivr: error: {message}", file=sys.stderr)
    return 2


def _problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments' combination, or None."""
    if args.dataset and args.format:
        return "--dataset and --format: give one (the speech dataset is a folder of its own)"
    fmt = args.format or "json"
    if args.long and fmt not in ("csv", "xlsx"):
        return f"--long: only with --format csv or xlsx (not {fmt})"
    if args.labels and fmt not in ("csv", "xlsx"):
        return f"--labels: only with --format csv or xlsx (not {fmt}; .sav has value labels)"
    if args.with_phone and (args.dataset or fmt == "json" or args.long):
        return "--with-phone: only for the one-row-per-contact csv, xlsx or sav"
    if fmt == "sav" and not args.output:
        return "--format sav needs -o FILE (its codebook is written beside it)"
    if fmt in ("xlsx",) and not args.output and sys.stdout.isatty():
        return f"--format {fmt} is a binary file: give -o FILE (or redirect the output)"
    if args.delimiter not in (";", ","):
        return f"--delimiter {args.delimiter!r}: use ';' or ','"
    return None


def _write(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` through a temporary file in the same folder."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _emit(args: argparse.Namespace, chunks: Iterable[bytes]) -> None:
    if args.output:
        _write(Path(args.output), chunks)
        return
    out = sys.stdout.buffer
    for chunk in chunks:
        out.write(chunk)
    out.flush()


def cmd_report(args: argparse.Namespace) -> int:
    from ivr.accounts.audit import Actor, Forbidden, NotFound
    from ivr.bootstrap import load_app
    from ivr.cli_staff import org_named
    from ivr.exports.service import ExportError

    problem = _problem(args)
    if problem:
        return _fail(problem)
    if args.output and not Path(args.output).resolve().parent.is_dir():
        return _fail(f"-o {args.output}: its folder does not exist")
    services = load_app().services()
    try:
        org_id = None
        if args.org:
            org = org_named(services, args.org)
            if org is None:
                return 2
            org_id = org.id
        try:
            return _run(args, services.exports, Actor.cli(org_id))
        except (NotFound, Forbidden, ExportError) as exc:
            return _fail(str(exc))
    finally:
        services.close()


def _run(args: argparse.Namespace, exports: Exports, actor: Actor) -> int:
    if args.dataset:
        folder = Path(args.dataset)
        if folder.exists() and any(folder.iterdir()):
            return _fail(f"--dataset {folder}: the folder is not empty")
        target = exports.open(actor, args.campaign, "dataset")
        count = exports.write_dataset(target, folder)
        print(f"{count} reviewed recordings written to {folder} (manifest.jsonl)", file=sys.stderr)
        return 0
    fmt = args.format or "json"
    detail: dict[str, Any] = {}
    if fmt in ("csv", "xlsx"):
        detail = {
            "layout": "long" if args.long else "wide",
            "values": "labels" if args.labels else "codes",
        }
    if args.with_phone:
        detail["with_phone"] = True
    target = exports.open(actor, args.campaign, fmt, **detail)
    options = {"long": args.long, "labels": args.labels, "with_phone": args.with_phone}
    if fmt == "json":
        text = json.dumps(exports.report(target), ensure_ascii=False, indent=2) + "\n"
        _emit(args, [text.encode("utf-8")])
    elif fmt == "csv":
        _emit(args, exports.csv(target, delimiter=args.delimiter, **options))
    elif fmt == "xlsx":
        _emit(args, exports.xlsx(target, **options))
    else:
        path = Path(args.output)
        codebook = path.with_name(f"{path.stem}-codebook.csv")
        found = exports.write_sav(target, path, with_phone=args.with_phone)
        from ivr.exports import sav_out

        _write(codebook, sav_out.codebook_chunks(found, delimiter=args.delimiter))
        print(f"{path} and its codebook {codebook} written", file=sys.stderr)
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="a campaign's report (JSON) or its results as CSV, XLSX, SPSS or a speech dataset",
    )
    p.add_argument("campaign", metavar="CAMPAIGN", help="the campaign's name or id")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="json: the report's numbers (the default); csv, xlsx: the results as a table; "
        "sav: SPSS with value labels, and a codebook",
    )
    p.add_argument("--long", action="store_true", help="one row per answer (csv, xlsx)")
    p.add_argument(
        "--labels", action="store_true", help="answers as their labels, not codes (csv, xlsx)"
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    p.add_argument("--org", metavar="NAME", help="the organisation whose campaign it is")
    p.add_argument(
        "--with-phone",
        action="store_true",
        help="add the contacts' phone numbers (personal data: recorded in the audit log)",
    )
    p.add_argument("--delimiter", default=";", help="the CSV field separator: ';' (default) or ','")
    p.add_argument(
        "--dataset",
        metavar="DIR",
        help="write the speech dataset (reviewed transcripts, their audio, manifest.jsonl)",
    )
    p.set_defaults(func=cmd_report)

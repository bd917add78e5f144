"""`ivr org`, `ivr user` and `ivr web`: the staff side on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.services import Services
    from ivr.store.org_models import Organisation


def _print(line: str) -> None:
    print(line, flush=True)


def org_named(services: Services, name: str) -> Organisation | None:
    """The organisation of ``--org NAME``; None after saying on stderr that there is none
    (the command then exits 2)."""
    from ivr.accounts.audit import NotFound

    try:
        return services.accounts.org_by_name(name)
    except NotFound as exc:
        print(f"ivr: error: --org: {exc}", file=sys.stderr)
        return None


def cmd_org(args: argparse.Namespace) -> int:
    """`ivr org add NAME [--timezone TZ] [--language fi|sv|en] [--json]`, `ivr org list`."""
    from ivr.accounts.audit import Actor
    from ivr.accounts.service import AccountError
    from ivr.bootstrap import load_app

    services = load_app().services()
    try:
        if args.action == "add":
            try:
                org = services.accounts.add_org(
                    Actor.cli(), args.name, timezone=args.timezone, language=args.language
                )
            except AccountError as exc:
                print(f"ivr: error: organisation {exc}", file=sys.stderr)
                return 2
            if args.json:
                _print(json.dumps({"id": org.id, "name": org.name}, ensure_ascii=False))
            else:
                _print(f"organisation {org.name} created (id {org.id})")
            return 0
        for org in services.accounts.orgs():
            _print(f"{org.name}\t{org.id}\t{org.timezone}")
        return 0
    finally:
        services.close()


def cmd_user(args: argparse.Namespace) -> int:
    """`ivr user add EMAIL --org NAME --role ROLE [--json]`: the password is generated and
    printed once (it is stored only as an argon2 hash)."""
    from ivr.accounts.audit import Actor
    from ivr.accounts.service import AccountError
    from ivr.bootstrap import load_app

    services = load_app().services()
    try:
        org = org_named(services, args.org)
        if org is None:
            return 2
        try:
            user, password = services.accounts.add_user(
                Actor.cli(org.id), args.email, org.id, args.role, name=args.name or ""
            )
        except AccountError as exc:
            print(f"ivr: error: {exc}", file=sys.stderr)
            return 2
        out: dict[str, Any] = {
            "email": user.email,
            "org": org.name,
            "role": args.role,
            "password": password,
        }
        if args.json:
            _print(json.dumps(out, ensure_ascii=False))
        else:
            _print(f"user {user.email} is now {args.role} in {org.name}")
            if password:
                _print(f"password (shown once, not stored in clear): {password}")
            else:
                _print("the user existed already: their password is unchanged")
        return 0
    finally:
        services.close()


def cmd_flow_add(args: argparse.Namespace) -> int:
    """`ivr flow add FILE --org NAME [--json]`: the flow joins the organisation's flows (as
    an upload in the staff UI); a campaign names it `--flow flow:ID`."""
    from pathlib import Path

    from ivr.accounts.audit import Actor
    from ivr.bootstrap import load_app
    from ivr.flows.loader import FlowError

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"ivr: error: {path}: cannot be read: {exc}", file=sys.stderr)
        return 2
    services = load_app().services()
    try:
        org = org_named(services, args.org)
        if org is None:
            return 2
        try:
            record = services.flows.upload(Actor.cli(org.id), text, source=str(path))
        except FlowError as exc:
            for problem in exc.problems:
                print(problem.format(str(path)), file=sys.stderr)
            return 1
        if args.json:
            out = {"id": record.id, "flow": record.key, "org": org.name}
            _print(json.dumps(out, ensure_ascii=False))
        else:
            _print(f"flow {record.key} added to {org.name}: campaigns use --flow flow:{record.id}")
        return 0
    finally:
        services.close()


TAG_PROBLEMS = {
    "name_missing": "give the tag a name",
    "name_long": "a tag's name is at most 60 characters",
    "name_taken": "the organisation has a tag of that name already",
    "key_invalid": "--key must be a digit 1-9",
    "key_taken": "another tag of the organisation has that key",
}


def cmd_tag(args: argparse.Namespace) -> int:
    """`ivr tag add NAME --org ORG [--key 1-9] [--json]`, `ivr tag list --org ORG`: the
    themes reviewers tag open answers with (keys 1-9 in the review queue)."""
    from ivr.accounts.audit import Actor
    from ivr.bootstrap import load_app
    from ivr.review.tags import TagInvalid, parse_key

    services = load_app().services()
    try:
        org = org_named(services, args.org)
        if org is None:
            return 2
        actor = Actor.cli(org.id)
        if args.action == "list":
            for tag in services.review.tags(actor):
                _print(f"{tag.key or '-'}\t{tag.name}\t{tag.id}")
            return 0
        try:
            tag = services.review.add_tag(actor, args.name, parse_key(args.key))
        except TagInvalid as exc:
            print(
                f"ivr: error: tag {args.name!r}: {TAG_PROBLEMS.get(exc.code, exc.code)}",
                file=sys.stderr,
            )
            return 2
        if args.json:
            _print(json.dumps({"id": tag.id, "name": tag.name, "key": tag.key}, ensure_ascii=False))
        else:
            _print(f"tag {tag.name} added to {org.name}" + (f" (key {tag.key})" if tag.key else ""))
        return 0
    finally:
        services.close()


def cmd_web(args: argparse.Namespace) -> int:
    """`ivr web`: the staff UI under gunicorn on [web] bind_address:port."""
    from ivr.web.serve import serve

    return serve()


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("org", help="organisations (municipalities) using this installation")
    org = p.add_subparsers(dest="action", required=True)
    c = org.add_parser("add", help="a new organisation")
    c.add_argument("name")
    c.add_argument("--timezone", default="Europe/Helsinki")
    c.add_argument("--language", default="fi", choices=["fi", "sv", "en"])
    c.add_argument("--json", action="store_true")
    org.add_parser("list", help="every organisation")
    p.set_defaults(func=cmd_org)

    p = sub.add_parser("user", help="staff users of the web UI")
    user = p.add_subparsers(dest="action", required=True)
    c = user.add_parser("add", help="add a user to an organisation (password printed once)")
    c.add_argument("email")
    c.add_argument("--org", required=True, help="the organisation's name")
    c.add_argument("--role", required=True, choices=["admin", "manager", "reviewer"])
    c.add_argument("--name", help="the person's name")
    c.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_user)

    p = sub.add_parser("tag", help="the themes reviewers tag open answers with")
    tag = p.add_subparsers(dest="action", required=True)
    c = tag.add_parser("add", help="a new tag (theme) of an organisation")
    c.add_argument("name")
    c.add_argument("--org", required=True, help="the organisation's name")
    c.add_argument("--key", help="its key 1-9 in the review queue")
    c.add_argument("--json", action="store_true")
    c = tag.add_parser("list", help="an organisation's tags: key, name, id")
    c.add_argument("--org", required=True, help="the organisation's name")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("web", help="run the staff web UI (gunicorn) until SIGTERM")
    p.set_defaults(func=cmd_web)

"""`ivr token add|revoke|list`: an organisation's API tokens on the command line (the same
service as the web page; the secret is printed once)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _print(line: str) -> None:
    print(line, flush=True)


def cmd_token(args: argparse.Namespace) -> int:
    from ivr.accounts.audit import Actor, NotFound
    from ivr.api.tokens import ApiTokens, TokenInvalid
    from ivr.bootstrap import load_app
    from ivr.cli_staff import org_named

    services = load_app().services()
    try:
        org = org_named(services, args.org)
        if org is None:
            return 2
        tokens = ApiTokens(services.factory, services.clock)
        actor = Actor.cli(org.id)
        if args.action == "add":
            try:
                made = tokens.create(actor, args.name or "command line", args.scope)
            except TokenInvalid as exc:
                print(f"ivr: error: --{exc.field}: {exc}", file=sys.stderr)
                return 2
            info = made.info
            out: dict[str, Any] = {"id": info.id, "org": org.name, "name": info.name,
                                   "scope": info.scope.value, "token": made.secret}  # fmt: skip
            if args.json:
                _print(json.dumps(out, ensure_ascii=False))
            else:
                _print(f"token {made.info.name} ({made.info.scope.value}) for {org.name}, id "
                       f"{made.info.id}")  # fmt: skip
                _print(f"token (shown once, stored only as a hash): {made.secret}")
            return 0
        if args.action == "revoke":
            try:
                done = tokens.revoke(actor, args.token_id)
            except NotFound as exc:
                print(f"ivr: error: {exc}", file=sys.stderr)
                return 2
            _print(f"token {args.token_id} " + ("revoked" if done else "was revoked already"))
            return 0
        for t in tokens.list(actor):
            used = t.last_used_at.isoformat() if t.last_used_at else "never used"
            state = "active" if t.active else "revoked"
            _print(f"{t.id}\t{t.name}\t{t.scope.value}\t{t.prefix}…\t{used}\t{state}")
        return 0
    finally:
        services.close()


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("token", help="an organisation's API tokens")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add", help="a new token (printed once)")
    a.add_argument("--org", metavar="NAME", required=True, help="the organisation")
    a.add_argument("--scope", choices=("read", "write"), required=True)
    a.add_argument("--name", help="what uses the token (default: 'command line')")
    a.add_argument("--json", action="store_true", help="print JSON")
    r = actions.add_parser("revoke", help="revoke a token at once")
    r.add_argument("token_id", metavar="TOKEN_ID")
    r.add_argument("--org", metavar="NAME", required=True)
    ls = actions.add_parser("list", help="the organisation's tokens")
    ls.add_argument("--org", metavar="NAME", required=True)
    p.set_defaults(func=cmd_token)

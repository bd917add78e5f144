"""`ivr cluster …` (the nodes behind Kamailio) and `ivr plan` (what a campaign needs)."""

from __future__ import annotations

from typing import Any


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("cluster", help="the Asterisk nodes: Kamailio's config, health, draining")
    actions = p.add_subparsers(dest="action", required=True)
    del actions  # each subcommand below adds its parser to ``actions``

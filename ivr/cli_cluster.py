"""`ivr cluster …` (the nodes behind Kamailio) and `ivr plan` (what a campaign needs)."""

from __future__ import annotations

from typing import Any


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("cluster", help="the Asterisk nodes: Kamailio's config, health, draining")
    actions = p.add_subparsers(dest="action", required=True)
    from ivr.cluster.status_cli import add_status_parser

    add_status_parser(actions)  # `ivr cluster status [--json]`
    from ivr.cluster.kamailio_cli import add_kamailio_parsers

    add_kamailio_parsers(actions)  # `ivr cluster render|drain|undrain|balancer|kamailio`
    from ivr.cluster.plan_cli import add_plan_parser

    add_plan_parser(sub)  # `ivr plan` (top level): what a campaign needs

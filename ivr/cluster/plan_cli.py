"""`ivr plan --calls-per-hour N --minutes-per-call M [...] [--json]`: the nodes, trunk
channels, bandwidth, RTP ports and disk a campaign needs (ivr.cluster.plan), from the
per-call figures measured by bench/cluster_sizing.py. Reads no settings and no database.

Exit codes: 0 printed, 2 bad input (the message names the option).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ivr.cluster.plan import DEFAULTS, PlanError, plan, render


def add_plan_parser(sub: Any) -> None:
    p = sub.add_parser(
        "plan",
        help="what a campaign needs: nodes, trunk channels, bandwidth, disk",
        description=(
            "Size a campaign from the per-call figures measured on our node "
            "(bench/cluster_sizing.py)."
        ),
    )
    p.add_argument("--calls-per-hour", type=float, required=True, help="calls in the busy hour")
    p.add_argument("--minutes-per-call", type=float, required=True, help="mean call length")
    p.add_argument(
        "--cores-per-node",
        type=int,
        default=DEFAULTS["cores_per_node"],
        help="CPU cores of each Asterisk node (default %(default)s)",
    )
    p.add_argument(
        "--cpu-target",
        type=float,
        default=DEFAULTS["cpu_target"] * 100,
        help="percent of a node's CPU to plan for (default %(default)g)",
    )
    p.add_argument(
        "--blocking",
        type=float,
        default=DEFAULTS["blocking"] * 100,
        help="percent of calls that may find every trunk channel busy (Erlang B; "
        "default %(default)g)",
    )
    p.add_argument(
        "--spare-nodes",
        type=int,
        default=DEFAULTS["spare_nodes"],
        help="nodes beyond the load, for failure or draining (default %(default)s)",
    )
    p.add_argument(
        "--recorded-share",
        type=float,
        default=DEFAULTS["recorded_share"] * 100,
        help="percent of call minutes recorded (open answers; default %(default)g)",
    )
    p.add_argument(
        "--hours-per-day",
        type=float,
        default=DEFAULTS["hours_per_day"],
        help="calling hours a day (default %(default)g)",
    )
    p.add_argument("--total-calls", type=int, help="calls in the whole campaign (its disk)")
    p.add_argument(
        "--max-calls-per-node",
        type=int,
        help="the most calls to plan on one node (default: the most one node carried in "
        "the benchmarks here)",
    )
    p.add_argument("--json", action="store_true", help="the plan as JSON")
    p.set_defaults(func=cmd_plan)


PERCENT_RANGES = {
    "cpu_target": "more than 0 and at most 100",
    "blocking": "more than 0 and at most 50",
    "recorded_share": "from 0 to 100",
}


def cmd_plan(args: argparse.Namespace) -> int:
    try:
        result = plan(
            args.calls_per_hour,
            args.minutes_per_call,
            cores_per_node=args.cores_per_node,
            cpu_target=args.cpu_target / 100,
            blocking=args.blocking / 100,
            spare_nodes=args.spare_nodes,
            recorded_share=args.recorded_share / 100,
            hours_per_day=args.hours_per_day,
            total_calls=args.total_calls,
            max_calls_per_node=args.max_calls_per_node,
        )
    except PlanError as exc:
        option = "--" + exc.field.replace("_", "-")
        given = getattr(args, exc.field, None)
        if exc.field in PERCENT_RANGES and isinstance(given, float):
            message = f"{given:g} is out of range: it must be {PERCENT_RANGES[exc.field]} (%)"
        else:
            message = exc.message
        print(f"ivr plan: error: {option}: {message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(render(result), end="")
    return 0

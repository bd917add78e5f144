"""`ivr webhooks deliver`: the webhook delivery worker on its own (``ivr worker`` runs the
same loop in a thread beside the job consumer). ``--once``: deliver what is due and exit.

Exit codes: 0 done (or stopped by SIGTERM/SIGINT), 2 a configuration problem.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any


def cmd_webhooks(args: argparse.Namespace) -> int:
    from ivr.config import load_settings
    from ivr.store.db import make_engine, make_session_factory
    from ivr.store.migrate import check_current
    from ivr.webhooks.delivery import Deliverer

    settings = load_settings()
    check_current(settings.database_url)
    engine = make_engine(settings.database_url)
    deliverer = Deliverer(make_session_factory(engine), _clock(), settings.webhooks, settings.smtp)
    try:
        if args.once:
            deliverer.release_dead_claims()
            total = 0
            while sent := deliverer.run_once():
                total += sent
            print(f"{total} webhook tries made", flush=True)
            return 0
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        print("webhook delivery worker is running; SIGTERM or Ctrl-C stops it", flush=True)
        deliverer.run(stop)
        return 0
    finally:
        engine.dispose()


def _clock() -> Any:
    from ivr.clock import system_clock

    return system_clock


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("webhooks", help="webhook delivery (the outbox worker)")
    hooks = p.add_subparsers(dest="action", required=True)
    d = hooks.add_parser("deliver", help="send due webhook deliveries until SIGTERM")
    d.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    p.set_defaults(func=cmd_webhooks)

"""`ivr cluster render | drain | undrain | balancer | kamailio`: Kamailio in front of the nodes.

- ``render``: write kamailio.cfg and dispatcher.list into ``[cluster] kamailio_dir``
  (``--check``: have ``kamailio -c`` check them too).
- ``drain NODE``: Kamailio sends the node no new calls (dispatcher.set_state "d" over its
  RPC socket) and the node's row in the database is flagged draining; its live calls go on.
- ``undrain NODE``: both undone (the node is active and probed again).
- ``balancer``: each node's state as Kamailio's dispatcher sees it.
- ``kamailio``: run Kamailio in the foreground on the rendered config (containers, systemd).

Exit codes: 0 done, 2 a configuration problem, 3 Kamailio unreachable or refusing.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ivr.cluster import kamailio


def _draining(settings: Any) -> frozenset[str]:
    """The nodes the database says are draining (``ivr cluster drain``), so that Kamailio
    (re)started from these files keeps them out; none, with a warning, if it cannot say."""
    import sqlalchemy as sa

    from ivr.cluster import nodes as cluster_nodes
    from ivr.store.db import make_engine, make_session_factory

    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return frozenset()  # no database yet: no node has ever been flagged
    engine = make_engine(url)
    try:
        if not sa.inspect(engine).has_table("cluster_nodes"):
            return frozenset()  # not migrated yet: likewise
        with make_session_factory(engine).begin() as s:
            return cluster_nodes.draining_nodes(s)
    except Exception as exc:  # noqa: BLE001 - the files are still right for healthy nodes
        print(f"warning: cannot read which nodes are draining from the database: {exc}")
        return frozenset()
    finally:
        engine.dispose()


def cmd_render(args: argparse.Namespace) -> int:
    from ivr.config import load_settings

    settings = load_settings()
    draining = _draining(settings)
    for path in kamailio.write(settings, draining):
        print(f"wrote {path}")
    if draining:
        print(f"draining (disabled in dispatcher.list): {', '.join(sorted(draining))}")
    where = kamailio.paths(settings)
    nodes = kamailio.parse_nodes(settings.cluster)
    cluster = settings.cluster
    print(
        f"Kamailio on udp:{cluster.kamailio_address}:{cluster.kamailio_port} in front of "
        + ", ".join(f"{n.name} ({n.host}:{n.port})" for n in nodes)
        + f"; algorithm {cluster.routing_algorithm}; OPTIONS every "
        f"{cluster.probe_interval_seconds} s, inactive after {cluster.probe_failure_threshold}"
        f" failed, active after {cluster.probe_recovery_threshold} answered"
    )
    if args.check:
        try:
            kamailio.check_config(where.cfg)
        except kamailio.KamailioError as exc:
            print(f"ivr: error: {exc}")
            return 3
        print("kamailio -c: config file ok")
    print(f"run: {' '.join(kamailio.run_argv(settings))}")
    return 0


def _set_drain(args: argparse.Namespace, draining: bool) -> int:
    from ivr.clock import system_clock
    from ivr.cluster import nodes as cluster_nodes
    from ivr.config import load_settings
    from ivr.store.db import make_engine, make_session_factory
    from ivr.store.migrate import check_current

    settings = load_settings()
    name = args.node
    check_current(settings.database_url)  # a database not migrated: an error before any change
    if settings.cluster.nodes:
        kamailio.find_node(settings, name)  # ConfigError for a name that is not listed
        try:
            kamailio.set_node_state(settings, name, "d" if draining else "ap")
            state = kamailio.node_states(settings).get(name, "?")
        except kamailio.KamailioError as exc:
            print(f"ivr: error: {exc}")
            return 3
        print(f"Kamailio: node {name} is {state}")
    else:
        print("no Kamailio configured (cluster.nodes is empty): only the database flag is set")
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine).begin() as s:
            cluster_nodes.set_draining(s, name, draining, system_clock())
        print(f"database: node {name} {'draining' if draining else 'not draining'}")
    except LookupError as exc:
        print(f"database: {exc} (its worker never heartbeated; nothing to flag there)")
    finally:
        engine.dispose()
    return 0


def cmd_drain(args: argparse.Namespace) -> int:
    return _set_drain(args, True)


def cmd_undrain(args: argparse.Namespace) -> int:
    return _set_drain(args, False)


def cmd_balancer(args: argparse.Namespace) -> int:
    from ivr.config import load_settings

    settings = load_settings()
    try:
        states = kamailio.node_states(settings)
    except kamailio.KamailioError as exc:
        print(f"ivr: error: {exc}")
        return 3
    nodes = {n.name: n for n in kamailio.parse_nodes(settings.cluster)}
    if args.json:
        print(json.dumps(states, indent=2))
        return 0
    for name, state in states.items():
        node = nodes.get(name)
        print(f"{name:20} {node.host + ':' + str(node.port) if node else '':24} {state}")
    return 0


def cmd_kamailio(args: argparse.Namespace) -> int:
    from ivr.config import load_settings

    settings = load_settings()
    if not args.no_render:
        kamailio.write(settings, _draining(settings))
    argv = kamailio.run_argv(settings)
    os.execv(argv[0], argv)
    return 0  # pragma: no cover - execv does not return


def add_kamailio_parsers(actions: Any) -> None:
    r = actions.add_parser(
        "render", help="write kamailio.cfg and dispatcher.list from [cluster] into the data dir"
    )
    r.add_argument("--check", action="store_true", help="also run `kamailio -c` on them")
    r.set_defaults(func=cmd_render)
    for name, func, text in (
        ("drain", cmd_drain, "no new calls to NODE (Kamailio + database); its calls go on"),
        ("undrain", cmd_undrain, "NODE takes new calls again"),
    ):
        d = actions.add_parser(name, help=text)
        d.add_argument("node", help="the node's name, as in cluster.nodes")
        d.set_defaults(func=func)
    b = actions.add_parser("balancer", help="each node's state in Kamailio's dispatcher")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_balancer)
    k = actions.add_parser("kamailio", help="run Kamailio in the foreground (renders first)")
    k.add_argument("--no-render", action="store_true", help="use the files already written")
    k.set_defaults(func=cmd_kamailio)

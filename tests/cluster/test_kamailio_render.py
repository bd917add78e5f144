"""`ivr cluster render`: the [cluster] Kamailio settings (validated, naming the field), the
rendered kamailio.cfg and dispatcher.list (pure), `kamailio -c` accepting them, and the
Asterisk side (a `balancer` endpoint matched by Kamailio's address, a systemname)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.cluster import kamailio
from ivr.config import ConfigError, Settings, load_settings
from ivr.pbx.render import render_all
from tests.support.cli import run_ivr
from tests.unit.test_render import CREDS, DIRS

NODES = "a=127.0.0.1:5070,b=127.0.0.1:5080"


def _settings(tmp_path: Path, **env: str) -> Settings:
    base = {"IVR_DATA_DIR": str(tmp_path), "IVR_CLUSTER_NODES": NODES}
    base.update({f"IVR_CLUSTER_{k.upper()}": v for k, v in env.items()})
    return load_settings(environ=base)


def test_nodes_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "ivr.toml").write_text(
        '[cluster]\nnodes = ["a=127.0.0.1:5070", "b=10.0.0.2:5060"]\nkamailio_port = 5090\n'
    )
    settings = load_settings(environ={"IVR_DATA_DIR": str(tmp_path)})
    assert kamailio.parse_nodes(settings.cluster) == [
        kamailio.Node("a", "127.0.0.1", 5070),
        kamailio.Node("b", "10.0.0.2", 5060),
    ]
    env = _settings(tmp_path, nodes="x=127.0.0.1:6000, y=127.0.0.1:6002")
    assert [n.name for n in kamailio.parse_nodes(env.cluster)] == ["x", "y"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"nodes": "a=127.0.0.1"}, "cluster.nodes.0: expected NAME=HOST:PORT"),
        ({"nodes": "a=127.0.0.1:99999"}, "cluster.nodes.0: '99999' is not a port"),
        ({"nodes": "a b=127.0.0.1:5070"}, "cluster.nodes.0: node name 'a b'"),
        ({"nodes": "a=127.0.0.1:5070,a=127.0.0.1:5080"}, "cluster.nodes.1: the node name 'a'"),
        ({"nodes": "a=127.0.0.1:5070,b=127.0.0.1:5070"}, "cluster.nodes.1: 127.0.0.1:5070 is"),
        ({"nodes": "a=127.0.0.1:5060"}, "cluster.nodes.0: 127.0.0.1:5060 is Kamailio's own"),
        ({"nodes": "a=bad_host!:5070"}, "cluster.nodes.0: 'bad_host!' is not an IP"),
        ({"kamailio_address": "0.0.0.0"}, "cluster.kamailio_address: give the one address"),
        ({"kamailio_address": "localhost"}, "cluster.kamailio_address: 'localhost' is not"),
        ({"kamailio_port": "0"}, "cluster.kamailio_port: 0 is not a port"),
        ({"probe_interval_seconds": "0"}, "cluster.probe_interval_seconds: 0 is not between"),
        ({"probe_failure_threshold": "0"}, "cluster.probe_failure_threshold: 0"),
        ({"probe_recovery_threshold": "101"}, "cluster.probe_recovery_threshold: 101"),
        ({"sip_timeout_seconds": "0.1"}, "cluster.sip_timeout_seconds: 0.1"),
        ({"routing_algorithm": "random"}, "cluster.routing_algorithm: 'random' is not one of"),
        ({"probe_interval_seconds": "x"}, "IVR_CLUSTER_PROBE_INTERVAL_SECONDS: expected an int"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        _settings(tmp_path, **env)


def test_render_is_a_pure_function_of_the_settings(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        kamailio_port="5090",
        probe_interval_seconds="5",
        probe_failure_threshold="4",
        probe_recovery_threshold="3",
        sip_timeout_seconds="1.5",
    )
    files = kamailio.render(settings)
    assert files == kamailio.render(settings)
    assert not (tmp_path / "kamailio").exists()  # rendering writes nothing
    cfg, dlist = files["kamailio.cfg"], files["dispatcher.list"]
    assert "listen=udp:127.0.0.1:5090\n" in cfg and cfg.count("listen=") == 1
    assert "disable_tcp=yes" in cfg and "enable_tls=no" in cfg
    for line in (
        'modparam("dispatcher", "ds_ping_interval", 5)',
        'modparam("dispatcher", "ds_probing_mode", 1)',
        'modparam("dispatcher", "ds_probing_threshold", 4)',
        'modparam("dispatcher", "ds_inactive_threshold", 3)',
        'modparam("tm", "fr_timer", 1500)',
        'modparam("dispatcher", "ds_hash_size", 9)',  # call-load, the default
        f'modparam("dispatcher", "list_file", "{tmp_path / "kamailio" / "dispatcher.list"}")',
        f'modparam("jsonrpcs", "dgram_socket", "{tmp_path / "kamailio" / "kamailio_rpc.sock"}")',
    ):
        assert line in cfg, line
    assert 'ds_select_dst("1", "$var(alg)")' in cfg and "$var(alg) = 10;" in cfg
    assert "record_route();" in cfg and "loose_route()" in cfg and "ds_next_dst()" in cfg
    assert "1 sip:127.0.0.1:5070 8 0 duid=a\n" in dlist
    assert "1 sip:127.0.0.1:5080 8 0 duid=b\n" in dlist


def test_round_robin_needs_no_call_load_tracking(tmp_path: Path) -> None:
    cfg = kamailio.render(_settings(tmp_path, routing_algorithm="round-robin"))["kamailio.cfg"]
    assert "$var(alg) = 4;" in cfg
    assert "ds_hash_size" not in cfg and "ds_load_" not in cfg


def test_render_needs_nodes(tmp_path: Path) -> None:
    settings = load_settings(environ={"IVR_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="cluster.nodes: no nodes"):
        kamailio.render(settings)


@pytest.mark.parametrize("algorithm", sorted(kamailio.ALGORITHMS))
def test_kamailio_accepts_the_rendered_config(tmp_path: Path, algorithm: str) -> None:
    settings = _settings(tmp_path, routing_algorithm=algorithm, kamailio_port="5099")
    written = kamailio.write(settings)
    assert [p.name for p in written] == ["kamailio.cfg", "dispatcher.list"]
    output = kamailio.check_config(kamailio.paths(settings).cfg)
    assert "config file ok" in output


def test_the_command_prints_what_it_wrote(tmp_path: Path) -> None:
    env = {"IVR_DATA_DIR": str(tmp_path), "IVR_CLUSTER_NODES": NODES, "PATH": "/usr/bin:/bin"}
    done = run_ivr(env, "cluster", "render", "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"wrote {tmp_path / 'kamailio' / 'kamailio.cfg'}" in done.stdout
    assert f"wrote {tmp_path / 'kamailio' / 'dispatcher.list'}" in done.stdout
    assert "config file ok" in done.stdout
    bad = run_ivr({**env, "IVR_CLUSTER_NODES": "a=x"}, "cluster", "render")
    assert bad.returncode == 2 and "cluster.nodes.0" in bad.stderr


def test_a_node_behind_kamailio_accepts_its_calls_by_source_address(tmp_path: Path) -> None:
    settings = _settings(tmp_path, kamailio_port="5090")
    assert kamailio.balancer_match(settings) == "127.0.0.1:5090"
    files = render_all(
        settings.pbx,
        CREDS,
        DIRS,
        balancer=kamailio.balancer_match(settings),
        system_name="node-a",
    )
    pjsip = files["pjsip.conf"]
    assert "[balancer](endpoint-common)\ncontext = from-balancer\nidentify_by = ip\n" in pjsip
    assert "type = identify\nendpoint = balancer\nmatch = 127.0.0.1:5090\n" in pjsip
    assert "[from-balancer]\ninclude => inbound-lines\n" in files["extensions.conf"]
    assert "systemname = node-a\n" in files["asterisk.conf"]
    alone = render_all(settings.pbx, CREDS, DIRS)  # no cluster: nothing of the above
    assert "balancer" not in alone["pjsip.conf"] and "from-balancer" not in alone["extensions.conf"]
    assert "systemname" not in alone["asterisk.conf"]
    lone = load_settings(environ={"IVR_DATA_DIR": str(tmp_path / "x")})
    assert kamailio.balancer_match(lone) == ""


def test_system_name_is_the_node_name_made_safe(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"IVR_DATA_DIR": str(tmp_path), "IVR_TELEPHONY_NODE_NAME": "10.0.0.2:5060"}
    )
    assert kamailio.system_name(settings) == "10-0-0-2-5060"


def test_a_node_draining_in_the_database_starts_disabled(tmp_path: Path) -> None:
    """A Kamailio restarted from freshly rendered files keeps a drain (the database's flag):
    that node is written disabled (flags 4 + 8), the others probed as usual."""
    from datetime import UTC, datetime

    from ivr.bootstrap import init
    from ivr.cluster import nodes as cluster_nodes

    env = {"IVR_DATA_DIR": str(tmp_path), "IVR_CLUSTER_NODES": NODES, "PATH": "/usr/bin:/bin"}
    app, _ = init(load_settings(environ=env))
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    with app.services().factory.begin() as s:
        for name in ("a", "b"):
            cluster_nodes.heartbeat(s, cluster_nodes.NodeBeat(name=name, started_at=now), now)
        cluster_nodes.set_draining(s, "b", True, now)
    done = run_ivr(env, "cluster", "render", "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "draining (disabled in dispatcher.list): b" in done.stdout
    dlist = (tmp_path / "kamailio" / "dispatcher.list").read_text()
    assert "1 sip:127.0.0.1:5070 8 0 duid=a\n" in dlist
    assert "1 sip:127.0.0.1:5080 12 0 duid=b\n" in dlist
    assert "config file ok" in done.stdout

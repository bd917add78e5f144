"""`ivr plan` as an operator runs it: a subprocess; its text, its JSON, its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.cluster.plan import channels_for, plan
from tests.support.cli import run_ivr


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    # `ivr plan` reads no settings; a private data directory all the same.
    return {"IVR_DATA_DIR": str(tmp_path)}


def test_ontime_campaign(env: dict[str, str]) -> None:
    done = run_ivr(env, "plan", "--calls-per-hour", "18000", "--minutes-per-call", "2")
    assert done.returncode == 0, done.stderr
    expected = plan(18_000, 2)
    out = done.stdout
    assert "18,000 calls an hour x 2 min = 600.0 Erlangs" in out
    assert f"Trunk channels: {channels_for(600, 0.01):,} (Erlang B" in out
    assert f"Nodes: {expected.nodes} = {expected.nodes_needed} carrying the load + 1 spare" in out
    assert "4 core(s) each" in out
    assert f"{expected.mbit_each_way:,.1f} Mbit/s" in out
    assert "GB a day of 10 h" in out
    assert "bench.cluster_sizing" in out  # where the per-call figures come from


def test_options_and_json(env: dict[str, str]) -> None:
    done = run_ivr(
        env,
        "plan",
        "--calls-per-hour", "1200",
        "--minutes-per-call", "1.5",
        "--cores-per-node", "2",
        "--cpu-target", "60",
        "--blocking", "0.5",
        "--spare-nodes", "0",
        "--recorded-share", "50",
        "--hours-per-day", "8",
        "--total-calls", "10000",
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    want = plan(
        1200,
        1.5,
        cores_per_node=2,
        cpu_target=0.6,
        blocking=0.005,
        spare_nodes=0,
        recorded_share=0.5,
        hours_per_day=8,
        total_calls=10_000,
    )
    assert got["erlangs"] == pytest.approx(30.0)
    assert got["trunk_channels"] == want.trunk_channels == channels_for(30, 0.005)
    assert got["nodes"] == want.nodes_needed
    assert got["calls_per_node"] == want.calls_per_node
    # 10,000 calls x 1.5 min x 50 % x 0.96 MB = 7.2 GB.
    assert got["recordings_gb_per_campaign"] == pytest.approx(7.2)
    assert got["measured"]["by"].startswith(".venv/bin/python -m bench.cluster_sizing")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--calls-per-hour", "0", "--minutes-per-call", "2"], "--calls-per-hour: 0 is out of"),
        (["--calls-per-hour", "100", "--minutes-per-call", "-1"], "--minutes-per-call: -1 is"),
        (["--calls-per-hour", "100", "--minutes-per-call", "2", "--cores-per-node", "0"],
         "--cores-per-node: 0 is out of range"),
        (["--calls-per-hour", "100", "--minutes-per-call", "2", "--cpu-target", "150"],
         "--cpu-target: 150 is out of range: it must be more than 0 and at most 100 (%)"),
        (["--calls-per-hour", "100", "--minutes-per-call", "2", "--recorded-share", "101"],
         "--recorded-share: 101 is out of range"),
        (["--calls-per-hour", "lots", "--minutes-per-call", "2"], "--calls-per-hour"),
        (["--minutes-per-call", "2"], "--calls-per-hour"),
    ],
)  # fmt: skip
def test_bad_input_names_the_option(env: dict[str, str], args: list[str], message: str) -> None:
    done = run_ivr(env, "plan", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr

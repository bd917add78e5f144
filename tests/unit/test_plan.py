"""ivr.cluster.plan: the sizing arithmetic, with figures checked by hand."""

from __future__ import annotations

import math

import pytest

from ivr.cluster.plan import (
    MEASURED,
    Measured,
    PlanError,
    channels_for,
    erlang_b,
    plan,
    render,
)

# Round figures, so that every result below can be worked out on paper.
ROUND = Measured(
    on="test",
    by="test",
    cpu_pct_per_call_asterisk=0.49,
    worker_ms_per_call=18.0,  # a 3-minute call: 18 / 180 / 10 = 0.01 % a concurrent call
    cpu_pct_idle_asterisk=1.0,
    cpu_pct_idle_worker=1.0,
    rss_mib_per_call=0.5,
    rss_mib_base=200.0,
    rtp_ports_per_call=2,
    packets_per_second=50,
    mb_per_recorded_minute=1.0,
    max_calls_tested=100_000,  # out of the way, but in test_the_tested_maximum_caps_a_node
)


def test_erlang_b_by_hand() -> None:
    # A = 1: B(1) = 1 / (1 + 1) = 0.5; B(2) = 0.5 / (2 + 0.5) = 0.2.
    assert erlang_b(1, 1) == pytest.approx(0.5)
    assert erlang_b(1, 2) == pytest.approx(0.2)
    # A = 2: B(1) = 2/3; B(2) = (4/3) / (2 + 4/3) = 0.4; B(3) = 0.8 / 3.8.
    assert erlang_b(2, 3) == pytest.approx(0.8 / 3.8)
    assert erlang_b(5, 0) == 1.0


def test_channels_for_is_the_fewest_that_meet_the_blocking() -> None:
    assert channels_for(1, 0.2) == 2  # B(2) = 0.2 exactly
    assert channels_for(1, 0.19) == 3
    assert channels_for(2, 0.25) == 3  # B(2) = 0.4, B(3) = 0.21
    assert channels_for(0, 0.01) == 0
    # The textbook table: 10 Erlangs at 1 % need 18 lines (B(17) = 1.4 %, B(18) = 0.71 %).
    assert channels_for(10, 0.01) == 18
    assert erlang_b(10, 17) > 0.01 >= erlang_b(10, 18)


def test_plan_by_hand() -> None:
    # 600 calls/h x 3 min = 30 Erlangs.
    p = plan(
        600,
        3,
        cores_per_node=1,
        cpu_target=0.5,
        blocking=0.01,
        spare_nodes=1,
        recorded_share=0.5,
        hours_per_day=8,
        total_calls=1000,
        measured=ROUND,
    )
    assert p.erlangs == pytest.approx(30.0)
    assert p.trunk_channels == channels_for(30, 0.01)
    assert erlang_b(30, p.trunk_channels) <= 0.01 < erlang_b(30, p.trunk_channels - 1)
    # One core at 50 %: (50 - 2 idle) / (0.49 + 0.01) per call = 96 calls; the worker
    # alone (50 - 1) / 0.01 = 4,900: the node's CPU limits.
    assert p.calls_per_node == 96
    assert p.limited_by == "node CPU"
    assert p.nodes_needed == math.ceil(p.trunk_channels / 96)
    assert p.nodes == p.nodes_needed + 1
    assert p.memory_mib_per_node == pytest.approx(200 + 96 * 0.5)
    assert p.rtp_ports_per_node == 192
    assert p.rtp_range_per_node == 384
    # 50 packets/s x 218 bytes x 8 = 87.2 kbit/s a call each way.
    assert ROUND.kbit_each_way == pytest.approx(87.2)
    assert p.mbit_each_way == pytest.approx(p.trunk_channels * 0.0872)
    assert p.mbit_each_way_mean == pytest.approx(30 * 0.0872)
    # Recordings: 600 x 3 x 0.5 = 900 min an hour; x 8 h x 1 MB = 7.2 GB a day;
    # the campaign 1,000 x 3 x 0.5 = 1,500 min = 1.5 GB.
    assert p.recorded_minutes_per_hour == pytest.approx(900)
    assert p.recordings_gb_per_day == pytest.approx(7.2)
    assert p.recordings_gb_per_campaign == pytest.approx(1.5)


def test_the_worker_limits_a_big_node() -> None:
    # 64 cores at 70 %, 3-minute calls: the node could carry (4480 - 2) / 0.5 = 8,956
    # calls, but the worker is one process: (70 - 1) / 0.01 = 6,900 calls.
    p = plan(300_000, 3, cores_per_node=64, cpu_target=0.7, measured=ROUND)
    assert p.calls_per_node == 6900
    assert p.limited_by == "telephony worker"
    assert p.calls_on_each <= 6900
    assert p.worker_cpu_pct_per_node <= 70


def test_the_tested_maximum_caps_a_node() -> None:
    capped = Measured(**{**ROUND.__dict__, "max_calls_tested": 50})
    p = plan(600, 3, cores_per_node=1, cpu_target=0.5, measured=capped)
    assert p.calls_per_node == 50  # the CPU would allow 96
    assert p.limited_by == "calls tested"
    assert p.nodes_needed == math.ceil(p.trunk_channels / 50)
    # An operator who has tested more says so.
    p = plan(600, 3, cores_per_node=1, cpu_target=0.5, max_calls_per_node=80, measured=capped)
    assert p.calls_per_node == 80
    with pytest.raises(PlanError) as caught:
        plan(600, 3, max_calls_per_node=0)
    assert caught.value.field == "max_calls_per_node"


def test_ontime_example_with_the_measured_figures() -> None:
    p = plan(18_000, 2, cores_per_node=4)
    assert p.erlangs == pytest.approx(600)
    assert p.trunk_channels == channels_for(600, 0.01)
    assert 600 < p.trunk_channels < 650
    assert p.nodes_needed * p.calls_per_node >= p.trunk_channels
    assert p.mbit_each_way == pytest.approx(p.trunk_channels * MEASURED.kbit_each_way / 1000)
    text = render(p)
    assert "600.0 Erlangs" in text
    assert f"Trunk channels: {p.trunk_channels:,}" in text
    assert MEASURED.by in text


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"calls_per_hour": 0}, "calls_per_hour"),
        ({"calls_per_hour": -5}, "calls_per_hour"),
        ({"calls_per_hour": float("nan")}, "calls_per_hour"),
        ({"minutes_per_call": 0}, "minutes_per_call"),
        ({"cores_per_node": 0}, "cores_per_node"),
        ({"cores_per_node": 1.5}, "cores_per_node"),
        ({"cpu_target": 0}, "cpu_target"),
        ({"cpu_target": 1.5}, "cpu_target"),
        ({"blocking": 0}, "blocking"),
        ({"spare_nodes": -1}, "spare_nodes"),
        ({"recorded_share": 1.2}, "recorded_share"),
        ({"hours_per_day": 25}, "hours_per_day"),
        ({"total_calls": -1}, "total_calls"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, float], field: str) -> None:
    args = {"calls_per_hour": 100.0, "minutes_per_call": 2.0, **kwargs}
    calls = args.pop("calls_per_hour")
    minutes = args.pop("minutes_per_call")
    with pytest.raises(PlanError) as caught:
        plan(calls, minutes, **args)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_a_node_too_small_for_one_call() -> None:
    tiny = Measured(**{**ROUND.__dict__, "cpu_pct_idle_asterisk": 80.0})
    with pytest.raises(PlanError) as caught:
        plan(100, 2, cores_per_node=1, cpu_target=0.7, measured=tiny)
    assert caught.value.field == "cores_per_node"

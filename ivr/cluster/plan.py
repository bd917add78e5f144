"""What a campaign needs: nodes, trunk channels, bandwidth, RTP ports and disk (pure).

The per-call figures below were MEASURED on our node only (our Asterisk + our telephony
worker; the simulated residents ran on an Asterisk of their own, not counted) by
``bench/cluster_sizing.py``; see MEASURED. Everything else is arithmetic:

- Offered traffic (Erlangs) = calls per hour x minutes per call / 60: the mean number of
  calls up at once in the busy hour.
- Trunk channels: Erlang B, the fewest channels for which a call finds every channel busy
  with probability <= ``blocking`` (default 1 %) given that traffic. Erlang B assumes
  random (Poisson) arrivals; the dialer paces its calls evenly, so this is on the safe
  side. Nodes are sized for the channels (the peak), not for the mean.
- Calls per node: the least of (a) (cores x ``cpu_target`` (70 %) x 100 - the idle node's
  CPU) / the CPU per call (Asterisk's per concurrent call + the worker's CPU per call spread
  over the call's length), (b) the worker alone under ``cpu_target`` of ONE core (it is one
  Python process), (c) ``max_calls_per_node`` (default: the most one node has carried in
  the benchmarks here). Nodes = channels / calls per node, rounded up, + ``spare_nodes``
  (default 1, so that one node can fail or be drained and the campaign keeps its rate).
- Bandwidth each way: channels x 87.2 kbit/s (G.711 at 20 ms: 50 packets/s of 160 bytes
  of audio + 40 of RTP/UDP/IPv4 + 18 of Ethernet). Measured: 50 packets/s each way per call.
- RTP ports: per call on a node (RTP + RTCP, measured); the range to configure per node
  is twice the ports in use at full load (Asterisk picks ports at random in the range).
- Recordings: WAV, 8 kHz 16-bit mono; recorded minutes = call minutes x
  ``recorded_share``; per day over ``hours_per_day`` busy hours; per campaign for
  ``total_calls`` calls when given.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

# --------------------------------------------------------------------------- G.711
AUDIO_BYTES = 160  # 20 ms of G.711
IP_UDP_RTP_BYTES = 20 + 8 + 12
ETHERNET_BYTES = 18  # header + FCS


@dataclass(frozen=True)
class Measured:
    """Per-call figures of OUR node (our Asterisk + our telephony worker)."""

    on: str  # the date measured
    by: str  # the command that measured them
    cpu_pct_per_call_asterisk: float  # percent of one core per concurrent call
    # The telephony worker's CPU is spent on a call's events (origination, answer, each
    # prompt and answer, hang-up, the writes), hardly while a prompt plays: milliseconds
    # of CPU per whole call; per concurrent call that is ms / the call's seconds / 10 %.
    worker_ms_per_call: float
    cpu_pct_idle_asterisk: float  # the idle node (warmed up, no call)
    cpu_pct_idle_worker: float
    rss_mib_per_call: float  # resident memory per concurrent call (Asterisk + worker)
    rss_mib_base: float  # the idle node, warmed up (Asterisk + worker)
    rtp_ports_per_call: int  # UDP ports bound per call on the node (RTP + RTCP)
    packets_per_second: float  # RTP packets each way per call
    mb_per_recorded_minute: float  # recording size (8 kHz 16-bit mono WAV)
    # The most concurrent calls one node (Asterisk + our worker) has carried here: a plan
    # does not put more on a node unless told (max_calls_per_node), however many cores.
    max_calls_tested: int

    def worker_pct_per_call(self, seconds_per_call: float) -> float:
        """The worker's percent of one core per concurrent call of this length."""
        return self.worker_ms_per_call / seconds_per_call / 10

    def cpu_pct_per_call(self, seconds_per_call: float) -> float:
        return self.cpu_pct_per_call_asterisk + self.worker_pct_per_call(seconds_per_call)

    @property
    def cpu_pct_idle(self) -> float:
        return self.cpu_pct_idle_asterisk + self.cpu_pct_idle_worker

    @property
    def kbit_each_way(self) -> float:
        """kbit/s per call each way on Ethernet (G.711, 20 ms: 87.2)."""
        size = AUDIO_BYTES + IP_UDP_RTP_BYTES + ETHERNET_BYTES
        return self.packets_per_second * size * 8 / 1000


#: Measured by bench/cluster_sizing.py (the figures and the run: the README's deployment
#: section). The simulated residents ran on an Asterisk of their own, not counted.
MEASURED = Measured(
    on="2026-11-30",
    by=".venv/bin/python -m bench.cluster_sizing --levels 20,50,100",
    # Slope over 0, 20, 50, 100 calls, machine otherwise quiet: 0.363 (0.296 in a run to
    # 150 calls on a machine other tests kept busy).
    cpu_pct_per_call_asterisk=0.36,
    # Whole calls of the bench's flow (introduction, open answer, goodbye), idle share
    # included: 29 ms at 100 calls (43 at 20); bench.cluster_kamailio: 20 ms per mini-survey
    # call at 10 calls/s on PostgreSQL, 28 ms on each of two nodes at 5 calls/s.
    worker_ms_per_call=29.0,
    cpu_pct_idle_asterisk=0.9,
    cpu_pct_idle_worker=0.4,
    rss_mib_per_call=0.23,  # Asterisk 0.199 + worker 0.032
    rss_mib_base=178.0,  # Asterisk 76.3 + worker 101.5, warmed up
    rtp_ports_per_call=2,
    packets_per_second=50,  # measured 50.2 in, 50.0 out
    mb_per_recorded_minute=0.96,  # 173 open answers: 3,556 s, 56.9 MB
    # bench.campaign_load (README, 2026-11-30): 300 concurrent calls at the peak, 0 lost.
    max_calls_tested=300,
)

DEFAULTS: dict[str, Any] = {
    "cores_per_node": 4,
    "cpu_target": 0.70,
    "blocking": 0.01,
    "spare_nodes": 1,
    "recorded_share": 0.25,
    "hours_per_day": 10.0,
}


class PlanError(ValueError):
    """Bad input; ``field`` names the parameter (its CLI option is ``--field-name``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Plan:
    # input
    calls_per_hour: float
    minutes_per_call: float
    cores_per_node: int
    cpu_target: float
    blocking: float
    spare_nodes: int
    recorded_share: float
    hours_per_day: float
    total_calls: int | None
    # traffic
    erlangs: float  # mean concurrent calls in the busy hour
    trunk_channels: int  # Erlang B at ``blocking``
    # nodes
    calls_per_node: int  # the most one node may carry at cpu_target
    # "node CPU", "telephony worker" (one process: one core at most) or "calls tested"
    # (max_calls_per_node, by default the most one node has carried here)
    limited_by: str
    nodes_needed: int
    nodes: int  # with the spare(s)
    calls_on_each: int  # the channels spread over nodes_needed
    cpu_pct_per_node: float  # of one core, with calls_on_each (Asterisk + worker)
    worker_cpu_pct_per_node: float  # of that, the worker's (of one core)
    memory_mib_per_node: float  # with calls_per_node
    rtp_ports_per_node: int  # in use with calls_per_node
    rtp_range_per_node: int  # to configure (pbx.rtp_end - pbx.rtp_start + 1)
    # network: the trunk side, all nodes together
    mbit_each_way: float  # at trunk_channels
    mbit_each_way_mean: float  # at erlangs
    # disk
    recorded_minutes_per_hour: float
    recordings_gb_per_day: float
    recordings_gb_per_campaign: float | None
    measured: Measured

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["measured"]["kbit_each_way"] = self.measured.kbit_each_way
        return out


def erlang_b(traffic: float, channels: int) -> float:
    """Blocking probability of ``channels`` channels offered ``traffic`` Erlangs
    (the recursion B(0) = 1, B(n) = A B(n-1) / (n + A B(n-1)))."""
    b = 1.0
    for n in range(1, channels + 1):
        b = traffic * b / (n + traffic * b)
    return b


def channels_for(traffic: float, blocking: float) -> int:
    """The fewest channels whose Erlang-B blocking is <= ``blocking``."""
    if traffic <= 0:
        return 0
    b = 1.0
    n = 0
    while b > blocking:
        n += 1
        b = traffic * b / (n + traffic * b)
    return n


def _check(field: str, value: object, low: float, high: float, *, above: bool = False) -> None:
    """PlanError unless ``low`` <= value <= ``high`` (``above``: low < value)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise PlanError(field, f"{value!r} is not a number")
    if value < low or value > high or (above and value == low):
        side = f"more than {low:g}" if above else f"at least {low:g}"
        raise PlanError(field, f"{value:g} is out of range: it must be {side} and at most {high:g}")


def _whole(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanError(field, f"{value!r} is not a whole number")


def _fits(budget: float, per_call: float) -> int:
    """Whole calls of ``per_call`` in ``budget`` (a hair of tolerance for binary fractions:
    69 / 0.1 is 689.99... in floating point)."""
    return math.floor(budget / per_call + 1e-9)


def plan(
    calls_per_hour: float,
    minutes_per_call: float,
    *,
    cores_per_node: int = DEFAULTS["cores_per_node"],
    cpu_target: float = DEFAULTS["cpu_target"],
    blocking: float = DEFAULTS["blocking"],
    spare_nodes: int = DEFAULTS["spare_nodes"],
    recorded_share: float = DEFAULTS["recorded_share"],
    hours_per_day: float = DEFAULTS["hours_per_day"],
    total_calls: int | None = None,
    max_calls_per_node: int | None = None,
    measured: Measured = MEASURED,
) -> Plan:
    """What a campaign of ``calls_per_hour`` calls of ``minutes_per_call`` minutes needs.
    PlanError names a bad parameter."""
    _check("calls_per_hour", calls_per_hour, 0, 10_000_000, above=True)
    _check("minutes_per_call", minutes_per_call, 0, 600, above=True)
    _whole("cores_per_node", cores_per_node)
    _check("cores_per_node", cores_per_node, 1, 1024)
    _check("cpu_target", cpu_target, 0, 1, above=True)
    _check("blocking", blocking, 0, 0.5, above=True)
    _whole("spare_nodes", spare_nodes)
    _check("spare_nodes", spare_nodes, 0, 100)
    _check("recorded_share", recorded_share, 0, 1)
    _check("hours_per_day", hours_per_day, 0, 24, above=True)
    if max_calls_per_node is not None:
        _whole("max_calls_per_node", max_calls_per_node)
        _check("max_calls_per_node", max_calls_per_node, 1, 100_000)
    if total_calls is not None:
        _whole("total_calls", total_calls)
        _check("total_calls", total_calls, 0, 10**10)
    m = measured
    erlangs = calls_per_hour * minutes_per_call / 60
    channels = channels_for(erlangs, blocking)
    target = cpu_target * 100
    seconds = minutes_per_call * 60
    per_call = m.cpu_pct_per_call(seconds)
    by_node = _fits(cores_per_node * target - m.cpu_pct_idle, per_call)
    by_worker = _fits(target - m.cpu_pct_idle_worker, m.worker_pct_per_call(seconds))
    cap = measured.max_calls_tested if max_calls_per_node is None else max_calls_per_node
    calls_per_node = min(by_node, by_worker, cap)
    if calls_per_node < 1:
        raise PlanError(
            "cores_per_node", f"{cores_per_node} core(s) at {cpu_target:.0%} cannot carry one call"
        )
    needed = max(1, math.ceil(channels / calls_per_node))
    on_each = math.ceil(channels / needed)
    recorded_per_hour = calls_per_hour * minutes_per_call * recorded_share
    mb = m.mb_per_recorded_minute
    ports = calls_per_node * m.rtp_ports_per_call
    return Plan(
        calls_per_hour=calls_per_hour,
        minutes_per_call=minutes_per_call,
        cores_per_node=cores_per_node,
        cpu_target=cpu_target,
        blocking=blocking,
        spare_nodes=spare_nodes,
        recorded_share=recorded_share,
        hours_per_day=hours_per_day,
        total_calls=total_calls,
        erlangs=erlangs,
        trunk_channels=channels,
        calls_per_node=calls_per_node,
        limited_by=(
            "node CPU"
            if calls_per_node == by_node
            else "telephony worker"
            if calls_per_node == by_worker
            else "calls tested"
        ),
        nodes_needed=needed,
        nodes=needed + spare_nodes,
        calls_on_each=on_each,
        cpu_pct_per_node=m.cpu_pct_idle + on_each * per_call,
        worker_cpu_pct_per_node=m.cpu_pct_idle_worker + on_each * m.worker_pct_per_call(seconds),
        memory_mib_per_node=m.rss_mib_base + calls_per_node * m.rss_mib_per_call,
        rtp_ports_per_node=ports,
        rtp_range_per_node=2 * ports,
        mbit_each_way=channels * m.kbit_each_way / 1000,
        mbit_each_way_mean=erlangs * m.kbit_each_way / 1000,
        recorded_minutes_per_hour=recorded_per_hour,
        recordings_gb_per_day=recorded_per_hour * hours_per_day * mb / 1000,
        recordings_gb_per_campaign=(
            None
            if total_calls is None
            else total_calls * minutes_per_call * recorded_share * mb / 1000
        ),
        measured=m,
    )


def render(p: Plan) -> str:
    """The plan as an operator reads it."""
    m = p.measured
    cores = p.cores_per_node
    limit = {
        "telephony worker": f"at {p.cpu_target:.0%} of the telephony worker's one core",
        "node CPU": f"at {p.cpu_target:.0%} of {cores} core(s)",
        "calls tested": (
            f"the cap per node (--max-calls-per-node; by default {m.max_calls_tested:,}, the "
            "most one node carried in the benchmarks here); the CPU would allow more"
        ),
    }[p.limited_by]
    lines = [
        f"Campaign: {p.calls_per_hour:,.0f} calls an hour x {p.minutes_per_call:g} min "
        f"= {p.erlangs:,.1f} Erlangs (calls up at once on average in the busy hour)",
        f"Trunk channels: {p.trunk_channels:,} (Erlang B: {p.blocking * 100:g} % of calls would "
        "find "
        "every channel busy)",
        f"Nodes: {p.nodes} = {p.nodes_needed} carrying the load + {p.spare_nodes} spare "
        f"({cores} core(s) each; at most {p.calls_per_node:,} calls a node: {limit})",
        f"  each node at the peak ({p.calls_on_each:,} calls): CPU {p.cpu_pct_per_node:,.0f} % "
        f"of one core ({p.cpu_pct_per_node / cores:.0f} % of {cores}; the telephony worker "
        f"{p.worker_cpu_pct_per_node:.0f} % of its one core)",
        f"  memory per node at {p.calls_per_node:,} calls: {p.memory_mib_per_node:,.0f} MiB "
        "(Asterisk + telephony worker)",
        f"  RTP ports per node: {p.rtp_ports_per_node:,} in use at {p.calls_per_node:,} calls; "
        f"configure a range of {p.rtp_range_per_node:,} ([pbx] rtp_start .. rtp_end)",
        f"Bandwidth to the SIP provider, each way: {p.mbit_each_way:,.1f} Mbit/s at "
        f"{p.trunk_channels:,} channels ({p.mbit_each_way_mean:,.1f} Mbit/s on average; "
        f"G.711 {m.kbit_each_way:.1f} kbit/s a call)",
        f"Recordings ({p.recorded_share:.0%} of call minutes, "
        f"{m.mb_per_recorded_minute:g} MB a minute): "
        f"{p.recorded_minutes_per_hour:,.0f} min an hour, "
        f"{p.recordings_gb_per_day:,.1f} GB a day of {p.hours_per_day:g} h",
    ]
    if p.recordings_gb_per_campaign is not None and p.total_calls is not None:
        lines.append(
            f"  the whole campaign ({p.total_calls:,} calls): "
            f"{p.recordings_gb_per_campaign:,.1f} GB"
        )
    lines.append(
        f"Per-call figures measured {m.on} on our node only (`{m.by}`): "
        f"Asterisk {m.cpu_pct_per_call_asterisk:.2f} % of a core per concurrent call, the "
        f"worker {m.worker_ms_per_call:g} ms of CPU per call, {m.rss_mib_per_call:g} MiB, "
        f"{m.rtp_ports_per_call} RTP ports."
    )
    return "\n".join(lines) + "\n"

"""One campaign, two nodes: two real `ivr telephony` workers, each with its own Asterisk, on
one PostgreSQL database, dial one campaign together (claims with SKIP LOCKED, pacing per
node). Mid-campaign node A's Asterisk and worker are killed (SIGKILL) with calls in flight:
once A has been silent for `[cluster] node_timeout_seconds`, node B takes A's attempts over
and settles them exactly once; the campaign completes with the exact outcome each simulated
resident gives; nothing is lost and nothing is dialled twice. When A comes back, its own
reconcile finds nothing left to do.

The residents are the personas of ivr.telephony.personas, reached through each node's
loopback trunk on its own Asterisk (so the residents of A die with A's Asterisk).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.accounts.audit import Actor
from ivr.bootstrap import App
from ivr.campaigns.admin import CampaignAdmin, CampaignSettings
from ivr.store import campaigns as cstore
from ivr.store.cluster_models import ClusterNode
from ivr.store.models import Attempt, Call
from ivr.telephony.personas import number_for
from tests.support.instance import destroy, make_instance, start_or_fail
from tests.support.ports import free_range
from tests.support.postgres import create_database, drop_database
from tests.support.worker import Worker

pytestmark = pytest.mark.pbx

FLOW = Path(__file__).parent / "flows" / "slow-survey.yaml"
CLI = Actor.cli()
HEARTBEAT = 1.0
TIMEOUT = 5.0  # [cluster] node_timeout_seconds: low, so the test sees the takeover soon
MAX_CONCURRENT = 6  # per node (each dialer paces the campaign on its own node)
SETTINGS = CampaignSettings(
    windows="mon-sun 00:00-23:59",
    allow_holidays=True,
    calls_per_second=3,
    max_concurrent=MAX_CONCURRENT,
    max_attempts=2,
    # Retries after a minute (the least the rules allow; the workers run on the wall clock):
    # busy and unanswered residents, and the calls cut by the kill, are called again then.
    retry_busy_minutes=1,
    retry_no_answer_minutes=1,
    retry_failed_minutes=1,
    cross_campaign_daily_cap=False,
)
# persona code -> (contacts, attempts each, the outcome of each attempt)
PERSONAS: dict[int, tuple[int, int, str]] = {
    705: (14, 1, "completed"),  # thinks 12 s, then keys 1: long calls, in flight at the kill
    701: (10, 1, "completed"),  # keys 1 at once
    302: (3, 2, "busy"),  # rings 2 s, busy: retried once (the cap: 2 attempts)
    203: (2, 2, "no_answer"),  # rings 3 s, gives up (480): retried once
    401: (3, 1, "declined"),  # 603 after a second: never again
    501: (3, 1, "unallocated"),  # 404 at once: never again
}


@dataclass
class Node:
    name: str
    app: App
    env: dict[str, str]
    log: Path


@pytest.fixture()
def two_nodes(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    database = f"ivr_two_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres_url, database)
    made: list[Node] = []
    taken: list[int] = []

    def settings(name: str) -> Callable[[dict[str, str]], dict[str, str]]:
        def extra(env: dict[str, str]) -> dict[str, str]:
            more = {
                "IVR_DATABASE_URL": url,
                "IVR_TELEPHONY_NODE_NAME": name,
                "IVR_CLUSTER_HEARTBEAT_SECONDS": str(HEARTBEAT),
                "IVR_CLUSTER_NODE_TIMEOUT_SECONDS": str(TIMEOUT),
            }
            if taken:  # the second node's RTP ports above the first's (both start later)
                start = free_range(400, start=taken[-1] + 1)
                more |= {"IVR_PBX_RTP_START": str(start), "IVR_PBX_RTP_END": str(start + 399)}
            else:
                start = int(env["IVR_PBX_RTP_START"])
            taken.append(start + 399)
            return more

        return extra

    try:
        for name in ("node-a", "node-b"):
            app, env = make_instance(prefix=f"ivr-{name}-", extra=settings(name))
            made.append(Node(name, app, env, tmp_path / f"{name}.log"))
            start_or_fail(app)
        yield made[0], made[1]
    finally:
        for node in made:
            destroy(node.app)
        drop_database(postgres_url, database)


def _contacts(path: Path) -> dict[str, int]:
    persona_of: dict[str, int] = {}
    serial = 0
    for code, (count, _, _) in PERSONAS.items():
        for _ in range(count):
            serial += 1
            persona_of[number_for(code, serial)] = code
    path.write_text("phone\n" + "\n".join(persona_of) + "\n")
    return persona_of


def _until(
    check: Callable[[], object], timeout: float, what: str, explain: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {explain()}"
        time.sleep(0.2)


def _count(admin: CampaignAdmin, *where: sa.ColumnElement[bool], model: type = Call) -> int:
    with admin.factory() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


def _talking(admin: CampaignAdmin, node: str) -> int:
    return _count(
        admin, Call.node_name == node, Call.status == "active", Call.answered_at.is_not(None)
    )


def _explainer(admin: CampaignAdmin, nodes: tuple[Node, Node]) -> Callable[[], str]:
    def text() -> str:
        status = admin.status(CLI, "kaksi")
        with admin.factory() as s:
            states = s.execute(
                sa.select(Attempt.claimed_by, Attempt.state, Attempt.outcome, sa.func.count())
                .group_by(Attempt.claimed_by, Attempt.state, Attempt.outcome)
            ).all()  # fmt: skip
        logs = "".join(
            f"\n--- {n.name} log:\n" + n.log.read_text(errors="replace")[-2000:]
            for n in nodes
            if n.log.exists()
        )
        return f"{status['status']} ({status['reason']}); attempts {states}{logs}"

    return text


def _overlap(spans: list[tuple[datetime, datetime]]) -> int:
    """The most spans open at one instant (an end frees its place before a start)."""
    events = sorted(
        [(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1])
    )
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_two_nodes_share_a_campaign_and_one_dies_mid_campaign(
    two_nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    a, b = two_nodes
    admin = a.app.campaigns()
    persona_of = _contacts(tmp_path / "contacts.csv")
    admin.create(CLI, "kaksi", FLOW, SETTINGS)
    admin.import_contacts(CLI, "kaksi", tmp_path / "contacts.csv")
    explain = _explainer(admin, (a, b))
    workers = [Worker(a.env, a.log, timeout=120), Worker(b.env, b.log, timeout=120)]
    try:
        admin.start(CLI, "kaksi")
        # Both nodes dial: node A has calls up (the long ones among them) when it dies.
        _until(
            lambda: _talking(admin, "node-a") >= 3 and _count(admin, Call.node_name == "node-b"),
            90,
            "calls in flight on both nodes",
            explain,
        )
        pid = a.app.pbx().pid()
        assert pid is not None
        workers[0].kill()  # SIGKILL the worker (its whole process group) ...
        os.killpg(pid, signal.SIGKILL)  # ... and Asterisk: its calls are cut, no BYE sent
        killed_at = time.monotonic()
        with admin.factory() as s:
            now = s.scalar(sa.select(sa.func.now()))
            in_flight = set(
                s.scalars(
                    sa.select(Attempt.id).where(
                        Attempt.claimed_by == "node-a", Attempt.state == "dialing"
                    )
                )
            )
        assert in_flight, "node A had nothing in flight when it died"
        _until(
            lambda: (
                not _count(
                    admin, Attempt.claimed_by == "node-a", Attempt.state == "dialing", model=Attempt
                )
            ),
            TIMEOUT + 60,
            "node B to take node A's attempts over",
            explain,
        )
        takeover_seconds = time.monotonic() - killed_at
        _until(
            lambda: admin.status(CLI, "kaksi")["status"] == "completed", 150, "completion", explain
        )
        assert workers[1].stop() == 0, explain()  # node B leaves cleanly
    finally:
        for worker in workers:
            worker.kill()

    with admin.factory() as s:
        attempts = s.execute(
            sa.select(
                Attempt.id, Attempt.phone, Attempt.attempt_no, Attempt.state, Attempt.outcome,
                Attempt.claimed_by, Attempt.outcome_detail,
            )
        ).all()  # fmt: skip
        calls = s.execute(
            sa.select(Call.attempt_id, Call.node_name, Call.status, Call.started_at, Call.ended_at)
        ).all()
        campaign_id = s.scalars(sa.select(Attempt.campaign_id)).first()
        assert campaign_id is not None and cstore.recount_matches(s, campaign_id)
    # Nothing lost, nothing left in flight; no attempt placed twice, every placed one a call.
    assert {str(x.state) for x in attempts} == {"done"}
    assert all(str(c.status) != "active" for c in calls)
    per_attempt = Counter(c.attempt_id for c in calls)
    assert max(per_attempt.values()) == 1
    assert set(per_attempt) == {x.id for x in attempts}
    # Both nodes dialled; node A nothing after its death; pacing held on each node.
    by_node = Counter(c.node_name for c in calls)
    assert by_node["node-a"] and by_node["node-b"], by_node
    for node in ("node-a", "node-b"):
        spans = [(c.started_at, c.ended_at) for c in calls if c.node_name == node]
        assert _overlap(spans) <= MAX_CONCURRENT, (node, _overlap(spans))
    assert not [c for c in calls if c.node_name == "node-a" and c.started_at > now]
    # A contact never had two calls at once.
    spans_of: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    phone_of = {x.id: x.phone for x in attempts}
    for c in calls:
        spans_of[phone_of[c.attempt_id]].append((c.started_at, c.ended_at))
    assert all(_overlap(spans) == 1 for spans in spans_of.values())
    # Taken over exactly: A's attempts in flight were settled by B, the calls that were up
    # as interrupted (and only those are interrupted).
    taken = [x for x in attempts if x.id in in_flight]
    assert all(x.claimed_by == "node-b" for x in taken), taken
    interrupted = [x for x in attempts if str(x.outcome) == "interrupted"]
    assert interrupted and {x.id for x in interrupted} <= in_flight
    assert all("node node-a down" in (x.outcome_detail or "") for x in interrupted)
    # The exact outcomes: each contact's attempts are what its resident does, with at most
    # one attempt cut by the kill (retried: completed in the end unless the cap was reached).
    outcomes: dict[str, list[str]] = defaultdict(list)
    for x in sorted(attempts, key=lambda x: x.attempt_no):
        outcomes[x.phone].append(str(x.outcome))
    assert sorted(outcomes) == sorted(persona_of)  # no contact lost
    for phone, code in persona_of.items():
        _, count, outcome = PERSONAS[code]
        got = outcomes[phone]
        cut = got.count("interrupted")
        assert cut <= 1, (phone, got)
        if count == 1:
            assert got == ["interrupted"] * cut + [outcome], (code, phone, got)
        else:  # retried up to the cap: the cut attempt counts as one
            assert sorted(got) == sorted(["interrupted"] * cut + [outcome] * (count - cut)), (
                code, phone, got,
            )  # fmt: skip
    print(
        f"\nkill -> takeover done: {takeover_seconds:.1f} s (node timeout {TIMEOUT:g} s, "
        f"heartbeat {HEARTBEAT:g} s); node A had {len(in_flight)} attempts in flight, "
        f"{len(interrupted)} interrupted; calls per node {dict(by_node)}"
    )

    # Node A comes back: its reconcile finds nothing of its own left, and changes nothing.
    def snapshot() -> list[tuple[object, ...]]:
        with admin.factory() as s:
            rows = s.execute(
                sa.select(Attempt.id, Attempt.state, Attempt.outcome, Attempt.claimed_by)
                .order_by(Attempt.id)
            ).all()  # fmt: skip
            rows += s.execute(
                sa.select(Call.id, Call.status, Call.ended_at).order_by(Call.id)
            ).all()
        return [tuple(r) for r in rows]

    before = snapshot()
    start_or_fail(a.app)
    back = Worker(a.env, a.log, timeout=120)
    try:
        _until(
            lambda: _count(
                admin, ClusterNode.name == "node-a", ClusterNode.started_at > now, model=ClusterNode
            ),
            30,
            "node A's heartbeat after its restart",
            explain,
        )
        assert back.stop() == 0, a.log.read_text()[-3000:]
    finally:
        back.kill()
    assert snapshot() == before

"""A campaign of a few hundred simulated residents runs to completion on the real Asterisk,
with exactly the expected outcomes per persona; nothing is dialled outside the window."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ivr.accounts.audit import Actor
from ivr.bootstrap import App, init
from ivr.campaigns import rules
from ivr.campaigns.admin import CampaignAdmin, CampaignSettings
from ivr.campaigns.dialer import policy_of
from ivr.clock import MovableClock
from ivr.config import load_settings
from ivr.store import campaigns as cstore
from ivr.store import repo
from ivr.store.models import Attempt, AttemptState, Call, Campaign, Contact
from ivr.telephony.personas import number_for
from tests.support.instance import destroy, instance_env, make_instance, start_or_fail
from tests.support.postgres import create_database, drop_database
from tests.support.telephony import ServiceThread

pytestmark = pytest.mark.pbx

FLOW = Path(__file__).parent / "flows" / "mini-survey.yaml"
CLI = Actor.cli()  # the command line: campaigns of no organisation
HELSINKI = ZoneInfo("Europe/Helsinki")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=HELSINKI)

# persona code -> (how many contacts, attempts each, the outcome of every attempt)
PERSONAS: dict[int, tuple[int, int, str]] = {
    701: (60, 1, "completed"),  # keys 1: answers the question
    703: (20, 1, "partial"),  # keys 9 (no such option), then hangs up
    302: (30, 3, "busy"),  # busy: retried up to the cap
    200: (30, 3, "no_answer"),  # rings out: retried up to the cap
    401: (20, 1, "declined"),  # 603: never again in this campaign
    501: (20, 1, "unallocated"),  # 404: never again
}
DO_NOT_CALL = 20  # numbers on the do-not-call list before the campaign


@pytest.fixture()
def campaign_pbx() -> Iterator[App]:
    app, _ = make_instance(prefix="ivr-camp-")
    start_or_fail(app)
    yield app
    destroy(app)


def _contacts_csv(path: Path) -> dict[str, int]:
    """Write the contact list; returns phone -> persona code (0: on the do-not-call list)."""
    persona_of: dict[str, int] = {}
    rows = ["puhelin;kieli;ikäryhmä;alue"]
    serial = 0
    for code, (count, _, _) in PERSONAS.items():
        for _ in range(count):
            serial += 1
            phone = number_for(code, serial)
            persona_of[phone] = code
            language = "sv" if serial % 4 == 0 else "fi"
            age = ("18-29", "30-49", "50-64", "65+")[serial % 4]
            # Finnish national form for some, to exercise the normalisation.
            written = "0" + phone[4:] if serial % 3 == 0 else phone
            rows.append(f"{written};{language};{age};Keskusta")
    for _ in range(DO_NOT_CALL):
        serial += 1
        phone = number_for(701, serial)
        persona_of[phone] = 0
        rows.append(f"{phone};fi;65+;Kylä")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return persona_of


def _wait(check, timeout: float, what: str, tick=None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if tick is not None:
            tick()
        time.sleep(0.5)


def test_campaign_runs_to_completion_with_exact_outcomes(campaign_pbx: App, tmp_path: Path) -> None:
    app = campaign_pbx
    admin = app.campaigns()
    persona_of = _contacts_csv(tmp_path / "asukkaat.csv")
    with admin.factory.begin() as s:
        for phone, code in persona_of.items():
            if code == 0:
                repo.add_opt_out(s, phone, source="staff")
    warnings = admin.create(
        CLI,
        "kevät",
        FLOW,
        CampaignSettings(
            caller_id="029 123 4567",
            calls_per_second=15,
            max_concurrent=60,
            retry_busy_minutes=30,
            retry_no_answer_minutes=60,
        ),
    )
    assert warnings.warnings == []
    imported = admin.import_contacts(CLI, "kevät", tmp_path / "asukkaat.csv")
    assert imported == {"accepted": len(persona_of), "duplicates": 0, "rejected": []}
    assert admin.import_contacts(CLI, "kevät", tmp_path / "asukkaat.csv")["accepted"] == 0

    with ServiceThread(app, dial=True) as svc:
        svc.parts.dialer.ring_timeout = 4
        svc.set_time(MONDAY_10.astimezone(UTC))
        admin.start(CLI, "kevät")

        def advance_when_idle() -> None:
            """Retries wait 30-60 min: move the clock on when only future ones are left."""
            status = admin.status(CLI, "kevät")
            if status["status"] == "running" and "waiting for retries" in (status["reason"] or ""):
                svc.set_time(svc.now() + timedelta(hours=1, minutes=5))

        _wait(
            lambda: admin.status(CLI, "kevät")["status"] == "completed",
            420,
            "the campaign to complete",
            tick=advance_when_idle,
        )
        final = admin.status(CLI, "kevät")

    with admin.factory() as s:
        assert cstore.recount_matches(s, final["id"])  # the counters equal a full recount
        attempts = s.execute(
            sa.select(
                Attempt.phone,
                Attempt.attempt_no,
                Attempt.outcome,
                Attempt.started_at,
                Attempt.call_id,
            )
        ).all()
        calls = s.execute(sa.select(Call.remote_number, Call.attempt_id)).all()
        campaign = s.scalars(sa.select(Campaign)).one()
    by_phone: dict[str, list[tuple[int, str]]] = {}
    for a in attempts:
        by_phone.setdefault(a.phone, []).append((a.attempt_no, str(a.outcome)))
    for phone, code in persona_of.items():
        got = sorted(by_phone[phone])
        if code == 0:
            assert got == [(1, "skipped")], (phone, got)
            continue
        _, count, outcome = PERSONAS[code]
        assert got == [(n, outcome) for n in range(1, count + 1)], (code, phone, got)
    # Every placed attempt is exactly one call; nothing for the do-not-call list.
    placed = [a for a in attempts if str(a.outcome) != "skipped"]
    assert len(calls) == len(placed)
    assert Counter(c.attempt_id for c in calls).most_common(1)[0][1] == 1
    assert not {c.remote_number for c in calls} & {p for p, c in persona_of.items() if c == 0}
    # Nothing was dialled outside Mon-Fri 10-20 in Helsinki.
    for a in placed:
        local = a.started_at.astimezone(HELSINKI)
        assert local.weekday() < 5 and 10 <= local.hour < 20, local
    # The funnel, as the pilots reported it.
    contacts = sum(c for c, _, _ in PERSONAS.values()) + DO_NOT_CALL
    assert final["contacts"] == contacts
    assert final["completed"] == 60
    assert final["calls_placed"] == len(placed) == 60 + 20 + 90 + 90 + 20 + 20
    assert final["outcomes"]["busy"] == 90 and final["outcomes"]["skipped"] == DO_NOT_CALL
    assert final["answered"] == 80 and final["survey_started"] == 60
    assert abs(final["response_rate"] - 60 / contacts) < 1e-9
    assert sum(b["contacts"] for b in final["by_language"].values()) == contacts
    assert campaign.flow_snapshot is not None and campaign.flow_version == "1"


def test_a_campaign_whose_prompts_cannot_be_rendered_stops_alone(
    campaign_pbx: App, tmp_path: Path
) -> None:
    """A flow whose recording is missing pauses its own campaign, with the reason in its
    status; another campaign running beside it dials to the end (before, the dialer's
    whole pass failed on it, every pass, and no campaign dialled)."""
    app = campaign_pbx
    admin = app.campaigns()
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        FLOW.read_text(encoding="utf-8")
        .replace("id: mini-survey", "id: broken-survey")
        .replace(
            "prompt: {fi: Kiitos., sv: Tack.}",
            "prompt: {fi: Kiitos., sv: Tack., recording: {fi: not-here.wav}}",
        ),
        encoding="utf-8",
    )
    (tmp_path / "a.csv").write_text("phone\n" + number_for(701, 1) + "\n")
    (tmp_path / "b.csv").write_text(
        "phone\n" + "\n".join(number_for(701, n) for n in range(2, 6)) + "\n"
    )
    anytime = CampaignSettings(windows="mon-sun 0-24", allow_holidays=True, calls_per_second=10)
    admin.create(CLI, "rikki", broken, anytime)
    admin.import_contacts(CLI, "rikki", tmp_path / "a.csv")
    admin.create(CLI, "ehja", FLOW, anytime)
    admin.import_contacts(CLI, "ehja", tmp_path / "b.csv")
    with ServiceThread(app, dial=True):
        admin.start(CLI, "rikki")
        admin.start(CLI, "ehja")
        _wait(lambda: admin.status(CLI, "ehja")["status"] == "completed", 90, "the sound one")
        _wait(lambda: admin.status(CLI, "rikki")["status"] == "paused", 30, "the broken one")
    broken_status = admin.status(CLI, "rikki")
    assert "cannot be rendered" in broken_status["reason"], broken_status["reason"]
    assert "not-here.wav" in broken_status["reason"]
    assert broken_status["calls_placed"] == 0
    assert admin.status(CLI, "ehja")["outcomes"]["completed"] == 4


def test_nothing_is_dialled_outside_the_window(campaign_pbx: App, tmp_path: Path) -> None:
    app = campaign_pbx
    admin = app.campaigns()
    (tmp_path / "c.csv").write_text(
        "phone\n" + "\n".join(number_for(701, n) for n in range(1, 6)) + "\n"
    )
    admin.create(CLI, "joulu", FLOW, CampaignSettings(calls_per_second=10))
    admin.import_contacts(CLI, "joulu", tmp_path / "c.csv")
    christmas = datetime(2026, 12, 25, 12, 0, tzinfo=HELSINKI)  # a Friday, a holiday
    with ServiceThread(app, dial=True) as svc:
        svc.set_time(christmas.astimezone(UTC))
        admin.start(CLI, "joulu")
        _wait(
            lambda: "holiday" in (admin.status(CLI, "joulu")["reason"] or "").lower(),
            20,
            "the campaign to say why it is idle",
        )
        time.sleep(3)
        assert admin.status(CLI, "joulu")["calls_placed"] == 0
        reason = admin.status(CLI, "joulu")["reason"]
        assert "Joulupäivä" in reason and "next calls at Mon 28.12. 10:00" in reason, reason
        svc.set_time(datetime(2026, 12, 28, 9, 59, 57, tzinfo=HELSINKI).astimezone(UTC))
        time.sleep(1.5)
        assert admin.status(CLI, "joulu")["calls_placed"] == 0  # 09:59:58: still closed
        _wait(lambda: admin.status(CLI, "joulu")["status"] == "completed", 60, "the calls")
    with admin.factory() as s:
        starts = s.scalars(sa.select(Attempt.started_at)).all()
        languages = s.scalars(sa.select(Contact.language)).all()
    assert len(starts) == 5 and all(
        t.astimezone(HELSINKI) >= datetime(2026, 12, 28, 10, 0, tzinfo=HELSINKI) for t in starts
    )
    assert {str(lang) for lang in languages} == {"fi"}


def test_two_workers_on_postgresql_never_dial_an_attempt_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two telephony workers, each with its own Asterisk, share one PostgreSQL database."""
    name = f"ivr_two_{uuid.uuid4().hex[:10]}"
    url = create_database(postgres_url, name)
    apps: list[App] = []
    clock = MovableClock(MONDAY_10)  # one clock: the admin and both workers read it
    try:
        for n in range(2):
            env = {
                **instance_env(tmp_path / f"node{n}"),
                "IVR_DATABASE_URL": url,
                "IVR_TELEPHONY_NODE_NAME": f"node{n}",
            }
            app, _ = init(load_settings(environ=env), clock=clock)
            start_or_fail(app)
            apps.append(app)
        admin = apps[0].campaigns()
        phones = [number_for(701, n) for n in range(1, 121)]
        (tmp_path / "c.csv").write_text("phone\n" + "\n".join(phones) + "\n")
        admin.create(CLI, "kaksi", FLOW, CampaignSettings(calls_per_second=20, max_concurrent=40))
        admin.import_contacts(CLI, "kaksi", tmp_path / "c.csv")
        with ServiceThread(apps[0], dial=True), ServiceThread(apps[1], dial=True):
            admin.start(CLI, "kaksi")
            _wait(lambda: admin.status(CLI, "kaksi")["status"] == "completed", 120, "completion")
        with admin.factory() as s:
            for campaign_id in s.scalars(sa.select(Campaign.id)):  # two writers, no lost update
                assert cstore.recount_matches(s, campaign_id)
            rows = s.execute(sa.select(Attempt.phone, Attempt.claimed_by, Attempt.outcome)).all()
            calls = s.execute(sa.select(Call.remote_number, Call.node_name)).all()
    finally:
        for app in apps:
            destroy(app)
        drop_database(postgres_url, name)
    assert sorted(r.phone for r in rows) == sorted(phones)  # one attempt per contact
    assert {str(r.outcome) for r in rows} == {"completed"}
    assert sorted(c.remote_number for c in calls) == sorted(phones)  # each dialled once
    per_node = Counter(c.node_name for c in calls)
    assert set(per_node) == {"node0", "node1"}, per_node  # both workers took a share
    assert all(r.claimed_by in ("node0", "node1") for r in rows)


# --------------------------------------------------------------------------- any date
# The same small campaign started on dates far apart: a past and a future Monday, the two
# DST change days (Sundays, with a night window that the change cuts or doubles), and a
# public holiday. The clock jumps to each next due attempt or window opening when nothing
# is in flight, so retries hours apart run in seconds.
SMALL: dict[int, tuple[int, int, str]] = {
    701: (4, 1, "completed"),
    703: (2, 1, "partial"),
    302: (3, 3, "busy"),
    200: (2, 3, "no_answer"),
    401: (2, 1, "declined"),
    501: (2, 1, "unallocated"),
}
DATES = {
    "past-monday": (datetime(2024, 1, 15, 10, 0, tzinfo=HELSINKI), "mon-fri 10:00-20:00"),
    "future-monday": (datetime(2031, 11, 24, 10, 0, tzinfo=HELSINKI), "mon-fri 10:00-20:00"),
    # 03:00 EET becomes 04:00 EEST: the 30-minute busy retries cross the gap.
    "dst-spring": (datetime(2027, 3, 28, 2, 20, tzinfo=HELSINKI), "sun 02:00-06:00"),
    # 04:00 EEST becomes 03:00 EET: the hour 03-04 comes twice.
    "dst-autumn": (datetime(2026, 10, 25, 2, 50, tzinfo=HELSINKI), "sun 02:00-06:00"),
    # Christmas Day, a Friday: nothing until Monday 28.12. at 10:00.
    "holiday": (datetime(2026, 12, 25, 12, 0, tzinfo=HELSINKI), "mon-fri 10:00-20:00"),
}


def _jump_to_next_event(admin: CampaignAdmin, clock: MovableClock, name: str) -> None:
    """Nothing in flight and nothing due: move the clock to the next due attempt (or the
    window opening after it)."""
    with admin.factory() as s:
        campaign = s.scalars(sa.select(Campaign).where(Campaign.name == name)).one()
        if campaign.status.value != "running":
            return
        states = Counter(
            s.scalars(sa.select(Attempt.state).where(Attempt.campaign_id == campaign.id))
        )
        if states[AttemptState.DIALING]:
            return
        next_due = s.scalar(
            sa.select(sa.func.min(Attempt.due_at)).where(
                Attempt.campaign_id == campaign.id, Attempt.state == AttemptState.DUE
            )
        )
        policy = policy_of(campaign)
    now = clock()
    if next_due is None:
        return
    at = max(next_due, now)
    if not rules.in_window(policy, at):
        opening = rules.next_window_start(policy, at)
        assert opening is not None, f"no window after {at}"
        at = opening
    if at > now + timedelta(seconds=2):
        clock.set(at + timedelta(seconds=1))


@pytest.mark.parametrize("start", list(DATES.values()), ids=list(DATES))
def test_a_campaign_runs_the_same_on_any_date(
    campaign_pbx: App, tmp_path: Path, start: tuple[datetime, str]
) -> None:
    when, windows = start
    app = campaign_pbx
    assert isinstance(app.clock, MovableClock)
    app.clock.set(when)
    admin = app.campaigns()
    assert admin.clock is app.clock
    phones: dict[str, int] = {}
    serial = 0
    for code, (count, _, _) in SMALL.items():
        for _ in range(count):
            serial += 1
            phones[number_for(code, serial)] = code
    (tmp_path / "c.csv").write_text("phone\n" + "\n".join(phones) + "\n")
    settings = CampaignSettings(
        windows=windows, calls_per_second=10, retry_busy_minutes=30, retry_no_answer_minutes=60
    )
    admin.create(CLI, "päivä", FLOW, settings)
    admin.import_contacts(CLI, "päivä", tmp_path / "c.csv")
    with ServiceThread(app, dial=True) as svc:
        svc.parts.dialer.ring_timeout = 4
        note = admin.start(CLI, "päivä")
        _wait(
            lambda: admin.status(CLI, "päivä")["status"] == "completed",
            240,
            "the campaign to complete",
            tick=lambda: _jump_to_next_event(admin, app.clock, "päivä"),  # type: ignore[arg-type]
        )
    with admin.factory() as s:
        campaign = s.scalars(sa.select(Campaign)).one()
        policy = policy_of(campaign)
        attempts = s.execute(
            sa.select(
                Attempt.phone, Attempt.attempt_no, Attempt.outcome, Attempt.started_at,
                Attempt.ended_at,
            ).order_by(Attempt.phone, Attempt.attempt_no)
        ).all()  # fmt: skip
    by_phone: dict[str, list[tuple[int, str]]] = {}
    for a in attempts:
        by_phone.setdefault(a.phone, []).append((a.attempt_no, str(a.outcome)))
    for phone, code in phones.items():
        _, count, outcome = SMALL[code]
        assert by_phone[phone] == [(n, outcome) for n in range(1, count + 1)], (code, phone)
    # Every call was placed inside the window, never before the start, and each retry no
    # earlier than its spacing after the attempt before (in real elapsed time, across DST).
    spacing = {"busy": timedelta(minutes=30), "no_answer": timedelta(minutes=60)}
    for a in attempts:
        assert a.started_at >= when, (a.started_at, when)
        assert rules.in_window(policy, a.started_at), a.started_at.astimezone(HELSINKI)
    for before, after in zip(attempts, attempts[1:], strict=False):
        if before.phone == after.phone:
            assert after.started_at - before.ended_at >= spacing[str(before.outcome)]
    if not rules.in_window(policy, when):
        assert "calls start when the window opens" in note
        first = min(a.started_at for a in attempts)
        assert first >= rules.next_window_start(policy, when)  # type: ignore[operator]


def test_an_asterisk_outage_spends_no_attempt(campaign_pbx: App, tmp_path: Path) -> None:
    """Asterisk stops for 20 s mid-campaign: the dialer stops placing calls, says since
    when, spends no resident's attempt on it, and resumes by itself."""
    app = campaign_pbx
    assert isinstance(app.clock, MovableClock)
    app.clock.set(MONDAY_10)
    admin = app.campaigns()
    phones = [number_for(701, n) for n in range(1, 41)]
    (tmp_path / "c.csv").write_text("phone\n" + "\n".join(phones) + "\n")
    admin.create(CLI, "katko", FLOW, CampaignSettings(calls_per_second=3, max_concurrent=6))
    admin.import_contacts(CLI, "katko", tmp_path / "c.csv")
    pbx = app.pbx()

    def finished() -> list[Any]:
        with admin.factory() as s:
            return list(
                s.execute(
                    sa.select(Attempt.outcome, Attempt.started_at, Attempt.ended_at).where(
                        Attempt.state == AttemptState.DONE
                    )
                )
            )

    with ServiceThread(app, dial=True) as svc:
        admin.start(CLI, "katko")
        _wait(lambda: len(finished()) >= 6, 60, "the first calls")
        pbx.stop()
        stopped = app.clock()
        _wait(
            lambda: "Asterisk unreachable since" in (admin.status(CLI, "katko")["reason"] or ""),
            15,
            "the status to say Asterisk is unreachable",
        )
        # 20 s without Asterisk: nothing is placed, nothing is settled as failed.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            late = [a for a in finished() if a.started_at and a.started_at > stopped]
            assert late == [], late
            assert not [a for a in finished() if str(a.outcome) == "failed"]
            time.sleep(0.5)
        start_or_fail(app)
        _wait(
            lambda: admin.status(CLI, "katko")["status"] == "completed",
            180,
            "the campaign to complete",
            tick=lambda: _jump_to_next_event(admin, app.clock, "katko"),  # type: ignore[arg-type]
        )
        assert svc.parts.dialer.outage_since is None
    with admin.factory() as s:
        attempts = s.execute(
            sa.select(Attempt.phone, Attempt.attempt_no, Attempt.outcome, Attempt.started_at)
        ).all()
        calls = s.execute(sa.select(Call.attempt_id, Call.status)).all()
    outcomes = Counter(str(a.outcome) for a in attempts)
    assert set(outcomes) <= {"completed", "interrupted"}, outcomes
    # Only calls already live when Asterisk stopped were cut (and retried); each contact
    # ends completed, and every attempt placed is exactly one call.
    for a in attempts:
        if str(a.outcome) == "interrupted":
            assert a.started_at <= stopped
    final = {a.phone: str(a.outcome) for a in sorted(attempts, key=lambda a: a.attempt_no)}
    assert sorted(final) == sorted(phones) and set(final.values()) == {"completed"}
    assert len(calls) == len(attempts)
    assert Counter(c.attempt_id for c in calls).most_common(1)[0][1] == 1

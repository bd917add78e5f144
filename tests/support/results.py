"""A finished campaign whose every outcome is known: the results the staff's review queue,
callback worklist, report and exports are tested on.

``seed_results(services, actor, tmp)`` makes a campaign of ``actor``'s organisation with the
strategy survey (examples/flows/strategy-survey.yaml) through the real services (create,
import contacts, start), then plays out each contact's ``Plan`` through the real store
writers the telephony worker uses (claim, originate, call, answers, recordings, callback
request, finish, retry): what the campaign holds is exactly ``PLANS`` (cycled), and the
tests count their expectations from the plans, never from the code under test. Open
answers get a real WAV file and a transcript with segments and word times, as the
speech-to-text job stores them.
"""

from __future__ import annotations

import json
import math
import struct
import wave
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.accounts.audit import Actor
from ivr.campaigns.admin import CampaignSettings
from ivr.clock import MovableClock
from ivr.jobs import store_transcript
from ivr.outcome import Outcome
from ivr.services import Services
from ivr.speech.stt.base import Segment, Transcript, Word
from ivr.store import campaigns as cstore
from ivr.store import repo
from ivr.store.models import Attempt, AttemptState, Contact, Recording, TranscriptRow
from ivr.store.org_models import FlowDoc

FLOW_YAML = (Path(__file__).parents[2] / "examples" / "flows" / "strategy-survey.yaml").read_text()
HELSINKI = ZoneInfo("Europe/Helsinki")
# A Monday at 12:00 in Helsinki (inside the default calling hours); the seed moves the
# clock forward from the start it is given, so any start date works.
OPEN_NODE = "develop-open"


@dataclass(frozen=True)
class Plan:
    """One resident: who they are, what each attempt ends in, and (for an answered call)
    the answers: node id → value, the open answer's words, a callback request."""

    language: str
    age_group: str
    area: str
    outcomes: tuple[str, ...]
    answers: dict[str, str] = field(default_factory=dict)
    words: tuple[str, ...] = ()  # the open answer's transcript, word by word
    callback: str | None = None  # the channel asked for, or None


_YES = {"services": "4", "develop-area": "transport", "recommend": "yes", "age-group": "30-49"}
PLANS: tuple[Plan, ...] = (
    Plan("fi", "30-49", "Keskusta", ("completed",), dict(_YES),
         ("Kevyen", "liikenteen", "väyliä", "pitäisi", "korjata"), "phone"),
    Plan("fi", "65+", "Kalanti", ("no_answer", "completed"),
         {"services": "3", "develop-area": "education", "recommend": "yes", "age-group": "65+"},
         ("Terveyskeskukseen", "pääsee", "liian", "hitaasti")),
    Plan("sv", "50-64", "Pyhämaa", ("completed",),
         {"services": "5", "develop-area": "leisure", "recommend": "no", "age-group": "50-64"},
         ("Mer", "kultur", "för", "unga"), "email"),
    Plan("fi", "18-29", "Keskusta", ("no_answer", "no_answer", "no_answer")),
    Plan("fi", "18-29", "Kalanti", ("busy", "declined")),
    Plan("fi", "30-49", "Pyhämaa", ("partial",), {"services": "2", "develop-area": "transport"}),
    Plan("sv", "65+", "Keskusta", ("opted_out",)),
    Plan("fi", "50-64", "Keskusta", ("unallocated",)),
    Plan("fi", "65+", "Pyhämaa", ("completed",),
         {"services": "4", "develop-area": "transport", "recommend": "yes", "age-group": "65+"},
         ("Tiet", "ovat", "huonossa", "kunnossa"), "home_visit"),
    Plan("sv", "30-49", "Kalanti", ("failed", "completed"),
         {"services": "1", "develop-area": "education", "recommend": "no", "age-group": "30-49"},
         ("Bussarna", "går", "för", "sällan")),
)  # fmt: skip


@dataclass
class Seeded:
    campaign_id: str
    flow_id: str
    contact_ids: list[str]  # in the order of the plans
    plans: list[Plan]
    transcript_ids: list[int]  # one per open answer, in the plans' order
    callback_ids: list[int]
    recordings: list[Path]


def _wav(path: Path, seconds: float) -> None:
    """A real 8 kHz mono WAV: a quiet 300 Hz tone (what Asterisk records is 8 kHz)."""
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(3000 * math.sin(2 * math.pi * 300 * i / rate)))
        for i in range(int(rate * seconds))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)


def _contacts_csv(plans: list[Plan], first_number: int) -> bytes:
    lines = ["Puhelin;Kieli;Ikäryhmä;Alue"]
    for n, plan in enumerate(plans):
        lines.append(f"+35840{first_number + n:07d};{plan.language};{plan.age_group};{plan.area}")
    return ("\n".join(lines) + "\n").encode()


def seed_results(
    services: Services,
    actor: Actor,
    tmp: Path,
    *,
    count: int = len(PLANS),
    name: str = "Tulokset",
    first_number: int = 1000000,
    retry_minutes: int = 30,
) -> Seeded:
    """A completed campaign of ``actor``'s organisation holding ``count`` residents (the
    plans cycled), made at the services' clock (a MovableClock, moved forward as the calls
    are played out)."""
    clock = services.clock
    assert isinstance(clock, MovableClock), "seed_results moves the clock: give a MovableClock"
    plans = [PLANS[i % len(PLANS)] for i in range(count)]
    with services.factory.begin() as s:
        doc = FlowDoc(org_id=str(actor.org_id), name=f"{name} flow", yaml=FLOW_YAML, updated_by="t")
        s.add(doc)
        s.flush()
        flow_id = doc.id
    made = services.campaigns.create(
        actor,
        name,
        f"flow:{flow_id}",
        CampaignSettings(
            caller_id="029 123 4567",
            windows="mon-sun 00:00-24:00",
            allow_holidays=True,
            retry_busy_minutes=retry_minutes,
            retry_no_answer_minutes=retry_minutes,
            retry_failed_minutes=retry_minutes,
        ),
    )
    csv_path = tmp / f"{made.id}.csv"
    csv_path.write_bytes(_contacts_csv(plans, first_number))
    services.campaigns.import_contacts(actor, made.id, csv_path)
    services.campaigns.start(actor, made.id)
    with services.factory() as s:
        query = sa.select(Contact.phone, Contact.id).where(Contact.campaign_id == made.id)
        phones: dict[str, str] = {phone: cid for phone, cid in s.execute(query).all()}
    contact_ids = [phones[f"+35840{first_number + n:07d}"] for n in range(count)]
    seeded = Seeded(made.id, flow_id, contact_ids, plans, [], [], [])
    recordings = tmp / "recordings"
    recordings.mkdir(exist_ok=True)
    for attempt_no in range(1, 4):
        for index, plan in enumerate(plans):
            if len(plan.outcomes) >= attempt_no:
                _play(services, seeded, index, attempt_no, recordings, retry_minutes)
        clock.advance(timedelta(minutes=retry_minutes + 1))
    with services.factory.begin() as s:
        cstore.set_status(s, made.id, "completed", at=clock())
    return seeded


def _play(
    services: Services,
    seeded: Seeded,
    index: int,
    attempt_no: int,
    recordings: Path,
    retry_minutes: int,
) -> None:
    """Play out attempt ``attempt_no`` of resident ``index`` as the dialer and the call
    would, with the store's own writers."""
    clock = services.clock
    assert isinstance(clock, MovableClock)
    plan = seeded.plans[index]
    outcome = Outcome(plan.outcomes[attempt_no - 1])
    contact_id = seeded.contact_ids[index]
    start = clock()
    with services.factory.begin() as s:
        attempt = s.scalars(
            sa.select(Attempt).where(
                Attempt.contact_id == contact_id, Attempt.attempt_no == attempt_no
            )
        ).one()
        s.execute(
            sa.update(Attempt)
            .where(Attempt.id == attempt.id)
            .values(state=AttemptState.DIALING, claimed_by="seed", claimed_at=start, due_at=start)
        )
        channel = f"seed-{attempt.id}"
        cstore.mark_originated(s, attempt.id, channel_id=channel, started_at=start)
        answered = outcome in (Outcome.COMPLETED, Outcome.PARTIAL, Outcome.OPTED_OUT)
        if answered:
            answered_at = start + timedelta(seconds=5)
            call = repo.create_call(
                s,
                direction="outbound",
                flow_id="strategy-survey",
                flow_version="1",
                channel_id=channel,
                node_name="seed",
                language=plan.language,
                remote_number=attempt.phone,
                attempt_id=attempt.id,
                started_at=start,
            )
            repo.mark_answered(s, call.id, answered_at)
            at = answered_at
            for node_id, value in plan.answers.items():
                at += timedelta(seconds=8)
                kind = "scale" if node_id == "services" else "choice"
                repo.save_answer(
                    s, call.id, node_id=node_id, kind=kind, value=value,
                    language=plan.language, digits="", at=at,
                )  # fmt: skip
            if plan.words:
                at += timedelta(seconds=20)
                seconds = 0.6 * len(plan.words) + 1.0
                path = recordings / f"{call.id}-{OPEN_NODE}.wav"
                _wav(path, seconds)
                seeded.recordings.append(path)
                repo.save_answer(
                    s, call.id, node_id=OPEN_NODE, kind="open", value=str(path),
                    language=plan.language, at=at,
                )  # fmt: skip
                recording = repo.save_recording(
                    s, call.id, node_id=OPEN_NODE, path=str(path),
                    duration_seconds=seconds, language=plan.language, at=at,
                )  # fmt: skip
                seeded.transcript_ids.append(_transcript(s, recording, plan, at))
            if plan.callback:
                at += timedelta(seconds=15)
                request = repo.save_callback(
                    s, call.id, channel=plan.callback, consent_version="2021-12-a",
                    language=plan.language, phone_number=attempt.phone,
                    time_window="weekday_daytime", interpreter_language=None, at=at,
                )  # fmt: skip
                seeded.callback_ids.append(request.id)
            ended = at + timedelta(seconds=10)
            repo.end_call(s, call.id, outcome, at=ended)
            finished = cstore.finish_attempt(
                s, attempt.id, outcome=outcome, answered_at=answered_at, ended_at=ended,
                call_id=call.id,
            )  # fmt: skip
        else:
            finished = cstore.finish_attempt(
                s, attempt.id, outcome=outcome, ended_at=start + timedelta(seconds=30)
            )
        if attempt_no < len(plan.outcomes):
            cstore.add_retry(s, finished, start + timedelta(minutes=retry_minutes), at=clock())


def _transcript(s: Session, recording: Recording, plan: Plan, at: datetime) -> int:
    """The transcript the speech-to-text job would store: one segment, a word every 0.6 s,
    a confidence that differs between plans (so the queue's orders differ)."""
    words = tuple(
        Word(round(0.5 + 0.6 * n, 3), round(0.5 + 0.6 * n + 0.5, 3), w)
        for n, w in enumerate(plan.words)
    )
    confidence = round(0.5 + 0.05 * len(plan.words[0]) % 0.5, 4)
    text = " ".join(plan.words)
    transcript = Transcript(
        text=text,
        language=plan.language,
        engine="seed",
        model="seed",
        confidence=confidence,
        segments=[Segment(words[0].start, words[-1].end, text, confidence, words)],
        audio_seconds=recording.duration_seconds,
        speech_seconds=recording.duration_seconds - 1.0,
    )
    store_transcript(s, recording, transcript)
    s.flush()
    row = s.scalars(
        sa.select(TranscriptRow).where(TranscriptRow.recording_id == recording.id)
    ).one()
    row.created_at = at
    return row.id


def expected_json(seeded: Seeded) -> str:
    """The plans as JSON (for a test's failure message)."""
    return json.dumps([p.__dict__ for p in seeded.plans], default=str, ensure_ascii=False)

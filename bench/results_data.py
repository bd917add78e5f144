"""A campaign's results at scale for the results benchmarks (bench/results_pages.py):
1,000,000 answers from 500,000 contacts, 100,000 of them open answers with transcripts.

One organisation, one completed campaign with the strategy survey (kept as a database
flow, its snapshot frozen as when started), every contact with a first attempt and a
third of them a second, 225,000 answered calls with four key-press answers each, 100,000
of those also an open answer (a recording row and a transcript with word times), a fifth
of the transcripts reviewed, a tenth tagged, and 10,000 callback requests. Rows are
inserted with the Core in chunks (executemany), so the same code seeds SQLite and
PostgreSQL. Deterministic: the same arguments give the same rows.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.store import counters
from ivr.store.models import (
    Answer,
    Attempt,
    Call,
    CallbackRequest,
    Campaign,
    Contact,
    Recording,
    TranscriptRow,
)
from ivr.store.org_models import FlowDoc
from ivr.store.work_models import Tag, TranscriptTag

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FLOW = Path(__file__).parents[1] / "examples" / "flows" / "strategy-survey.yaml"
CHUNK = 20_000
AGE_GROUPS = ("18-29", "30-49", "50-64", "65+")
AREAS = ("Keskusta", "Kalanti", "Pyhämaa", "Lepäinen")
WORDS = ("tiet", "koulut", "kirjasto", "bussit", "terveyskeskus", "puistot", "valaistus",
         "uimahalli", "nuoret", "vanhukset", "pyörätiet", "kauppa")  # fmt: skip
AREAS_OF_WORK = ("economy", "education", "transport", "leisure", "environment")
TAGS = ("Liikenne", "Palvelut", "Kulttuuri", "Ympäristö", "Nuoret")
# Outcomes of first attempts (a contact whose first is not final gets a second).
FIRST = ("completed", "completed", "completed", "no_answer", "busy", "completed", "partial",
         "completed", "declined", "completed", "failed", "completed", "opted_out",
         "unallocated")  # fmt: skip


def _chunks(rows: Iterator[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _uuid(kind: int, serial: int) -> str:
    return str(uuid.UUID(int=(kind << 64) + serial))


def seed(
    engine: sa.Engine, org_id: str, *, contacts: int = 500_000, open_answers: int = 100_000
) -> dict[str, Any]:
    """Insert the campaign and its results; returns the campaign id and the counts."""
    rng = random.Random(11)
    started = time.perf_counter()
    yaml = FLOW.read_text()
    campaign_id = _uuid(1, 1)
    flow_id = _uuid(2, 1)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(FlowDoc.__table__),  # type: ignore[arg-type]
            [{"id": flow_id, "org_id": org_id, "name": "Strategia", "yaml": yaml,
              "updated_at": NOW, "updated_by": "bench"}],
        )  # fmt: skip
        conn.execute(
            sa.insert(Campaign.__table__),  # type: ignore[arg-type]
            [{"id": campaign_id, "org_id": org_id, "name": "Strategiakysely",
              "flow_path": f"flow:{flow_id}", "flow_id": "strategy-survey", "flow_version": "1",
              "flow_snapshot": yaml, "caller_id": "+358291234567",
              "timezone": "Europe/Helsinki", "windows": "mon-fri 10:00-20:00",
              "allow_holidays": False, "max_attempts": 3, "retry_busy_minutes": 30,
              "retry_no_answer_minutes": 120, "retry_failed_minutes": 60,
              "calls_per_second": 2.0, "max_concurrent": 30, "default_language": "fi",
              "cross_campaign_daily_cap": True, "status": "completed",
              "price_per_minute": 0.0125, "billing_rule": "60/60", "public_info": "{}",
              "created_at": NOW - timedelta(days=10), "started_at": NOW - timedelta(days=9),
              "stopped_at": NOW - timedelta(days=1)}],
        )  # fmt: skip
        conn.execute(
            sa.insert(Tag.__table__),  # type: ignore[arg-type]
            [{"id": 1_000 + n, "org_id": org_id, "name": name, "key": n + 1, "created_at": NOW}
             for n, name in enumerate(TAGS)],
        )  # fmt: skip

    # Which contacts were answered, and which of those left an open answer.
    answered_calls = (open_answers * 9) // 4  # 225,000 for 100,000 open answers
    counts = {"contacts": contacts, "attempts": 0, "calls": 0, "answers": 0, "transcripts": 0}

    def contact_rows() -> Iterator[dict[str, Any]]:
        for serial in range(1, contacts + 1):
            yield {
                "id": _uuid(3, serial),
                "campaign_id": campaign_id,
                "phone": f"+35840{serial:07d}",
                "language": "sv" if serial % 7 == 0 else "fi",
                "age_group": AGE_GROUPS[serial % 4],
                "birth_year": None,
                "area": AREAS[serial % 4 if serial % 3 else (serial // 3) % 4],
                "postcode": None,
                "attributes": "{}",
                "source_line": serial + 1,
                "created_at": NOW - timedelta(days=10),
            }

    def result_rows() -> Iterator[tuple[str, dict[str, Any]]]:
        """Attempts, calls, answers, recordings, transcripts, tags and callbacks, in the
        order their foreign keys need."""
        calls = 0
        for serial in range(1, contacts + 1):
            contact_id = _uuid(3, serial)
            start = NOW - timedelta(days=9, seconds=-(serial * 1.3))
            first = FIRST[serial % len(FIRST)]
            # The first `answered_calls` completed contacts answer; others' "completed" is
            # not reached (a no-answer instead), so the totals are exact.
            if first == "completed" and calls >= answered_calls:
                first = "no_answer"
            tries = (
                [first] if first not in ("no_answer", "busy", "failed") else [first, "no_answer"]
            )
            for no, outcome in enumerate(tries, start=1):
                at = start + timedelta(hours=2 * (no - 1))
                answered = outcome in ("completed", "partial", "opted_out")
                call_id = _uuid(4, serial) if answered else None
                talk = 70.0 + serial % 90 if answered else None
                if answered:
                    calls += 1
                    yield "calls", {
                        "id": call_id, "direction": "outbound", "flow_id": "strategy-survey",
                        "flow_version": "1", "line_number": None,
                        "remote_number": f"+35840{serial:07d}",
                        "language": "sv" if serial % 7 == 0 else "fi",
                        "channel_id": f"bench-{serial}", "node_name": "bench",
                        "status": outcome, "started_at": at,
                        "answered_at": at + timedelta(seconds=6),
                        "ended_at": at + timedelta(seconds=6 + (talk or 0)),
                        "attempt_id": _uuid(5, serial * 4 + no), "org_id": org_id,
                        "campaign_id": campaign_id,
                    }  # fmt: skip
                yield "attempts", {
                    "id": _uuid(5, serial * 4 + no), "campaign_id": campaign_id,
                    "contact_id": contact_id, "phone": f"+35840{serial:07d}",
                    "attempt_no": no, "state": "done", "due_at": at, "outcome": outcome,
                    "started_at": at,
                    "answered_at": at + timedelta(seconds=6) if answered else None,
                    "ended_at": at + timedelta(seconds=6 + (talk or 24)), "ring_seconds": 6.0,
                    "talk_seconds": talk, "call_id": call_id, "created_at": at,
                }  # fmt: skip
                if not answered or outcome == "opted_out":
                    continue
                language = "sv" if serial % 7 == 0 else "fi"
                values = [
                    ("services", "scale", str(1 + serial % 5)),
                    ("develop-area", "choice", AREAS_OF_WORK[serial % 5]),
                    ("recommend", "choice", "yes" if serial % 3 else "no"),
                    ("age-group", "choice", AGE_GROUPS[(serial + (serial % 5 == 0)) % 4]),
                ]  # fmt: skip
                if outcome == "partial":
                    values = values[:1]
                else:  # the language menu first (answered "fi" or "sv")
                    values.insert(0, ("lang", "language", language))
                has_open = outcome == "completed" and counts["transcripts"] < open_answers
                for seq, (node, kind, value) in enumerate(values, start=1):
                    yield "answers", {
                        "call_id": call_id, "seq": seq, "node_id": node, "kind": kind,
                        "value": value, "digits": "", "language": language,
                        "created_at": at + timedelta(seconds=10 * seq),
                    }  # fmt: skip
                if not has_open:
                    continue
                counts["transcripts"] += 1
                n = counts["transcripts"]
                yield "answers", {
                    "call_id": call_id, "seq": len(values) + 1, "node_id": "develop-open",
                    "kind": "open", "value": f"/bench/{n}.wav", "digits": "",
                    "language": language, "created_at": at + timedelta(seconds=60),
                }  # fmt: skip
                yield "recordings", {
                    "id": n, "call_id": call_id, "node_id": "develop-open",
                    "path": f"/bench/{n}.wav", "duration_seconds": 12.0, "language": language,
                    "created_at": at + timedelta(seconds=60),
                }  # fmt: skip
                words = [WORDS[(serial * 7 + k) % len(WORDS)] for k in range(6 + serial % 10)]
                confidence = round(rng.random() * 0.6 + 0.4, 4)
                yield "transcripts", {
                    "id": n, "recording_id": n, "call_id": call_id, "engine": "bench",
                    "model": "bench", "language": language, "machine_text": " ".join(words),
                    "confidence": confidence,
                    "segments": json.dumps([{
                        "start": 0.5, "end": 0.5 + 0.6 * len(words), "text": " ".join(words),
                        "confidence": confidence,
                        "words": [[round(0.5 + 0.6 * k, 2), round(1.0 + 0.6 * k, 2), w]
                                  for k, w in enumerate(words)],
                    }]),
                    "flagged": None,
                    "corrected_text": " ".join(words).capitalize() if n % 5 == 0 else None,
                    "created_at": at + timedelta(seconds=90),
                    "updated_at": at + timedelta(seconds=90),
                    "org_id": org_id, "campaign_id": campaign_id, "node_id": "develop-open",
                    "review_state": (
                        "reviewed" if n % 5 == 0 else "second_look" if n % 53 == 0 else "new"
                    ),
                    "reviewed_by": None, "reviewed_at": None, "sample_key": rng.random(),
                }  # fmt: skip
                if n % 10 == 0:
                    yield (
                        "transcript_tags",
                        {"transcript_id": n, "tag_id": 1_000 + (n // 10) % len(TAGS)},
                    )
                if n % 10 == 3:
                    yield "callback_requests", {
                        "call_id": call_id, "phone_number": f"+35840{serial:07d}",
                        "channel": ("phone", "email", "home_visit")[n % 3],
                        "time_window": "weekday_daytime", "interpreter_language": None,
                        "consent_version": "2021-12-a", "language": language,
                        "status": ("new", "assigned", "contacted", "resolved")[n % 4],
                        "created_at": at + timedelta(seconds=100), "org_id": org_id,
                        "campaign_id": campaign_id,
                    }  # fmt: skip

    tables = {
        "calls": Call.__table__,
        "attempts": Attempt.__table__,
        "answers": Answer.__table__,
        "recordings": Recording.__table__,
        "transcripts": TranscriptRow.__table__,
        "transcript_tags": TranscriptTag.__table__,
        "callback_requests": CallbackRequest.__table__,
    }
    for batch in _chunks(contact_rows()):
        with engine.begin() as conn:
            conn.execute(sa.insert(Contact.__table__), batch)  # type: ignore[arg-type]
    pending: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}

    def flush() -> None:
        with engine.begin() as conn:
            for name, table in tables.items():  # the foreign keys' order
                if pending[name]:
                    conn.execute(sa.insert(table), pending[name])  # type: ignore[arg-type]
                    pending[name] = []

    held = 0
    for name, row in result_rows():
        pending[name].append(row)
        if name in ("attempts", "calls", "answers"):
            counts[name] += 1
        held += 1
        if held >= CHUNK * 2:
            flush()
            held = 0
    flush()
    with Session(engine) as s, s.begin():  # the counters the live progress reads
        counters.rebuild(s)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
        else:
            conn.execute(sa.text("ANALYZE"))
            conn.commit()
    return {"campaign_id": campaign_id, "seconds": time.perf_counter() - started, **counts}

"""The store on both backends: SQLite (a temporary file) and a real PostgreSQL server.

Every test gets an empty database (a fresh SQLite file, or a fresh PostgreSQL database
created on the session's server) and the schema only ever comes from the migrations.
"""

from __future__ import annotations

import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ivr.outcome import Outcome
from ivr.store import repo
from ivr.store.db import make_engine, session_scope
from ivr.store.migrate import (
    DatabaseNotCurrent,
    check_current,
    current_revision,
    head_revision,
    upgrade,
)
from ivr.store.models import (
    Answer,
    AnswerKind,
    Base,
    Call,
    CallbackChannel,
    CallbackStatus,
    Direction,
    OptOut,
    OptOutSource,
)
from tests.support.cli import run_ivr
from tests.support.postgres import create_database, drop_database

TABLES = {
    *("organisations", "users", "memberships", "audit_log", "login_failures"),
    *("flows", "inbound_lines"),
    *("tags", "transcript_tags", "transcript_edits", "callback_notes"),
    "report_aggregates",
    *("api_tokens", "api_idempotency"),
    "calls",
    "answers",
    "recordings",
    "callback_requests",
    "opt_outs",
    "campaigns",
    "campaign_counters",
    "contacts",
    "attempts",
    "transcripts",
    *("webhook_endpoints", "webhook_events", "webhook_deliveries", "webhook_attempts"),
    *("report_schedules", "schedule_sends"),
    "cluster_nodes",
    "transcription_claims",
}


NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # the time these rows are written at


def new_call(session: Session, **overrides: Any) -> Call:
    values: dict[str, Any] = {
        "direction": Direction.INBOUND,
        "flow_id": "kuntakysely",
        "flow_version": "3",
        "channel_id": f"chan-{uuid.uuid4().hex}",
        "node_name": "node-a",
        "language": "fi",
        "line_number": "100",
        "remote_number": "+358401234567",
        "started_at": NOW,
    }
    values.update(overrides)
    return repo.create_call(session, **values)


# --------------------------------------------------------------------------- migrations
def test_migrations_take_an_empty_database_to_head_and_are_idempotent(db_url: str) -> None:
    head = head_revision()
    assert current_revision(db_url) is None
    with pytest.raises(DatabaseNotCurrent, match="has no schema"):
        check_current(db_url)

    first = upgrade(db_url)
    assert (first.before, first.after, first.changed) == (None, head, True)
    again = upgrade(db_url)
    assert (again.before, again.after, again.changed) == (head, head, False)
    assert check_current(db_url) == head

    engine = make_engine(db_url)
    try:
        assert set(sa.inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            # The migrations build exactly what the models describe.
            assert compare_metadata(context, Base.metadata) == []
        # Alembic does not compare CHECK constraints: every one the models name is there.
        inspector = sa.inspect(engine)
        for table in Base.metadata.sorted_tables:
            modelled = {
                c.name for c in table.constraints if isinstance(c, sa.CheckConstraint) and c.name
            }
            built = {c["name"] for c in inspector.get_check_constraints(table.name)}
            assert modelled == built, table.name
    finally:
        engine.dispose()


def test_workers_upgrading_at_the_same_time_take_turns(db_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: upgrade(db_url), range(4)))
    assert sorted(r.changed for r in results) == [False, False, False, True]
    assert {r.after for r in results} == {head_revision()}


def test_check_current_refuses_an_unknown_revision(engine: Engine, db_url: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseNotCurrent, match="9999, which this version of ivr does not know"):
        check_current(db_url)


def test_check_current_on_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nothing-here.db"
    with pytest.raises(DatabaseNotCurrent, match="does not exist; run `ivr init`"):
        check_current(f"sqlite:///{path}")
    assert not path.exists()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'ivr.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- calls
def test_a_call_with_answers_recording_and_callback(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        call = new_call(s)
        call_id, channel = call.id, call.channel_id
        repo.mark_answered(s, call_id, NOW)
        repo.save_answer(s, call_id, node_id="q1", kind="choice", value="yes", digits="1",
                         language="fi")  # fmt: skip
        repo.save_answer(s, call_id, node_id="lang", kind=AnswerKind.LANGUAGE, value="sv",
                         digits="2", language="fi")  # fmt: skip
        repo.set_progress(s, call_id, language="sv")
        # The same question answered again after the language switch: both rows stay.
        repo.save_answer(s, call_id, node_id="q1", kind="choice", value="ja", digits="1",
                         language="sv")  # fmt: skip
        repo.save_answer(s, call_id, node_id="q2", kind="scale", value="4", digits="4",
                         language="sv")  # fmt: skip
        repo.save_recording(s, call_id, node_id="q3", path="/rec/q3.wav", duration_seconds=7.5,
                            language="sv")  # fmt: skip
        repo.save_answer(s, call_id, node_id="q3", kind="open", value="/rec/q3.wav",
                         language="sv")  # fmt: skip
        repo.save_callback(s, call_id, channel=CallbackChannel.PHONE, consent_version="v2",
                           language="sv", phone_number="+358401234567",
                           time_window="morning")  # fmt: skip
        assert repo.end_call(s, call_id, Outcome.COMPLETED, cause=16, at=NOW) is True

    with session_scope(sessions) as s:
        got = repo.get_call(s, call_id)
        assert got is not None
        assert (got.status, got.hangup_cause, got.language) == (Outcome.COMPLETED, 16, "sv")
        assert got.direction is Direction.INBOUND
        assert (got.line_number, got.remote_number) == ("100", "+358401234567")
        assert got.last_node_id == "q3"
        assert got.answered_at is not None and got.ended_at is not None
        assert got.started_at <= got.answered_at <= got.ended_at
        assert [(a.seq, a.node_id, a.value) for a in got.answers] == [
            (1, "q1", "yes"),
            (2, "lang", "sv"),
            (3, "q1", "ja"),
            (4, "q2", "4"),
            (5, "q3", "/rec/q3.wav"),
        ]
        assert got.answers[4].digits == ""
        assert got.answers[1].kind is AnswerKind.LANGUAGE
        [recording] = got.recordings
        assert (recording.node_id, recording.path, recording.duration_seconds) == (
            "q3",
            "/rec/q3.wav",
            7.5,
        )
        [callback] = got.callback_requests
        assert callback.status is CallbackStatus.NEW
        assert (callback.channel, callback.consent_version) == (CallbackChannel.PHONE, "v2")
        assert (callback.time_window, callback.interpreter_language) == ("morning", None)

        latest = repo.latest_answers(s, call_id)
        assert {node: (a.value, a.language) for node, a in latest.items()} == {
            "lang": ("sv", "fi"),
            "q1": ("ja", "sv"),
            "q2": ("4", "sv"),
            "q3": ("/rec/q3.wav", "sv"),
        }
        assert list(latest) == ["lang", "q1", "q2", "q3"]  # in the order they were given
        found = repo.get_call_by_channel(s, channel)
        assert found is not None and found.id == call_id

    with session_scope(sessions) as s:
        # A late hang-up event after the call ended changes nothing.
        assert repo.end_call(s, call_id, Outcome.FAILED, cause=34, at=NOW) is False
    with session_scope(sessions) as s:
        again = repo.get_call(s, call_id)
        assert again is not None
        assert (again.status, again.hangup_cause) == (Outcome.COMPLETED, 16)


def test_end_call_wants_a_final_status_and_an_existing_call(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        call_id = new_call(s).id
        with pytest.raises(ValueError, match="not a final call status"):
            repo.end_call(s, call_id, "active", at=NOW)
        with pytest.raises(ValueError):
            repo.end_call(s, call_id, "gone", at=NOW)
        with pytest.raises(repo.CallNotFound):
            repo.end_call(s, "no-such-call", Outcome.PARTIAL, at=NOW)
        assert repo.end_call(s, call_id, "partial", cause=16, at=NOW) is True


def test_interrupt_active_calls_touches_only_this_nodes_active_calls(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        a1 = new_call(s, node_name="node-a").id
        a2 = new_call(s, node_name="node-a", direction="outbound", line_number=None).id
        a_done = new_call(s, node_name="node-a").id
        repo.end_call(s, a_done, Outcome.COMPLETED, cause=16, at=NOW)
        b1 = new_call(s, node_name="node-b").id

    with session_scope(sessions) as s:
        assert repo.interrupt_active_calls(s, "node-a", NOW) == 2
    with session_scope(sessions) as s:
        assert repo.interrupt_active_calls(s, "node-a", NOW) == 0  # nothing left to interrupt
        calls = {c.id: c for c in s.scalars(sa.select(Call))}
        assert {i: c.status for i, c in calls.items()} == {
            a1: Outcome.INTERRUPTED,
            a2: Outcome.INTERRUPTED,
            a_done: Outcome.COMPLETED,
            b1: Outcome.ACTIVE,
        }
        assert calls[a1].ended_at is not None and calls[a2].ended_at is not None
        assert calls[b1].ended_at is None
        assert calls[a_done].hangup_cause == 16
        assert [c.id for c in repo.active_calls(s, "node-b")] == [b1]
        assert repo.active_calls(s, "node-a") == []


def test_an_anonymous_call_stores_no_number(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        withheld = new_call(s, remote_number="anonymous").id
        info_line = new_call(s, remote_number="+358401112222", anonymous=True).id
        shown = new_call(s, remote_number="+358403334444").id
    with session_scope(sessions) as s:
        rows: dict[str, str | None] = {
            row.id: row.remote_number
            for row in s.execute(
                sa.text("SELECT id, remote_number FROM calls WHERE id IN (:a, :b, :c)"),
                {"a": withheld, "b": info_line, "c": shown},
            )
        }
    assert rows == {withheld: None, info_line: None, shown: "+358403334444"}


def test_timestamps_are_timezone_aware_utc(sessions: sessionmaker[Session]) -> None:
    helsinki = datetime(2025, 3, 1, 12, 30, tzinfo=ZoneInfo("Europe/Helsinki"))
    with session_scope(sessions) as s:
        call_id = new_call(s, started_at=helsinki).id
        repo.mark_answered(s, call_id, at=helsinki + timedelta(seconds=5))
        repo.save_answer(s, call_id, node_id="q1", kind="choice", value="1", language="fi")
    with session_scope(sessions) as s:
        call = repo.get_call(s, call_id)
        assert call is not None
        stamps = [call.started_at, call.answered_at, call.answers[0].created_at]
        for stamp in stamps:
            assert stamp is not None and stamp.tzinfo is not None
            assert stamp.utcoffset() == timedelta(0)
        assert call.started_at == helsinki  # the same instant ...
        assert call.started_at.hour == 10  # ... told in UTC
        assert call.answers[0].created_at > call.started_at
        assert abs(call.answers[0].created_at - datetime.now(UTC)) < timedelta(minutes=5)

    with pytest.raises(sa.exc.StatementError, match="naive datetime"), session_scope(sessions) as s:
        new_call(s, started_at=datetime(2025, 3, 1, 12, 30))


# --------------------------------------------------------------------------- opt-outs
def test_opt_outs_are_unique_and_outlive_their_call(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        call_id = new_call(s).id
        repo.save_answer(s, call_id, node_id="q1", kind="choice", value="1", language="fi")
        assert repo.add_opt_out(s, "+358401234567", source=OptOutSource.IN_CALL, call_id=call_id)
    with session_scope(sessions) as s:
        assert repo.add_opt_out(s, "+358401234567", source="staff") is False  # already there
        assert repo.add_opt_out(s, "+358409999999", source="import") is True
        with pytest.raises(ValueError, match="not an E.164 number"):
            repo.add_opt_out(s, "040 123 4567", source="staff")
    with session_scope(sessions) as s:
        assert repo.is_opted_out(s, "+358401234567")
        assert repo.is_opted_out(s, "+358409999999")
        assert not repo.is_opted_out(s, "+358405555555")
        rows = s.scalars(sa.select(OptOut).order_by(OptOut.id)).all()
        assert [(o.phone_number, o.source, o.call_id) for o in rows] == [
            ("+358401234567", OptOutSource.IN_CALL, call_id),  # the first one is kept
            ("+358409999999", OptOutSource.IMPORT, None),
        ]

    # Purging the call's data removes its answers but keeps the number on the list.
    with session_scope(sessions) as s:
        s.execute(sa.delete(Call).where(Call.id == call_id))
    with session_scope(sessions) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Answer)) == 0
        kept = s.scalars(sa.select(OptOut).where(OptOut.phone_number == "+358401234567")).one()
        assert kept.call_id is None


# --------------------------------------------------------------------------- constraints
def test_foreign_keys_and_checks_are_enforced(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(sa.exc.IntegrityError), session_scope(sessions) as s:
        s.add(Answer(call_id="no-such-call", seq=1, node_id="q1", kind=AnswerKind.CHOICE,
                     value="1", digits="1", language="fi"))  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError), session_scope(sessions) as s:
        repo.save_recording(s, "no-such-call", node_id="q3", path="/rec/x.wav",
                            duration_seconds=1.0, language="fi")  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError), session_scope(sessions) as s:
        repo.save_callback(s, "no-such-call", channel="email", consent_version="v1",
                           language="fi")  # fmt: skip
    with pytest.raises(repo.CallNotFound), session_scope(sessions) as s:
        repo.save_answer(s, "no-such-call", node_id="q1", kind="choice", value="1", language="fi")

    with session_scope(sessions) as s:
        call = new_call(s)
        call_id, channel = call.id, call.channel_id
    with pytest.raises(sa.exc.IntegrityError), session_scope(sessions) as s:
        new_call(s, channel_id=channel)  # one call per Asterisk channel
    with pytest.raises(sa.exc.IntegrityError), session_scope(sessions) as s:
        s.execute(sa.text("UPDATE calls SET status = 'bogus' WHERE id = :id"), {"id": call_id})
    with pytest.raises(sa.exc.IntegrityError), session_scope(sessions) as s:
        s.execute(
            sa.text(
                "INSERT INTO opt_outs (phone_number, source, created_at) "
                "VALUES ('+358401234567', 'rumour', CURRENT_TIMESTAMP)"
            )
        )
    with session_scope(sessions) as s:  # nothing of the failed transactions was kept
        assert s.scalar(sa.select(sa.func.count()).select_from(Call)) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(OptOut)) == 0


# --------------------------------------------------------------------------- the CLI
ivr = run_ivr


def test_ivr_init_creates_the_sqlite_database_at_head(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"IVR_DATA_DIR": str(data_dir)}
    url = f"sqlite:///{data_dir / 'ivr.db'}"

    first = ivr(env, "init")
    assert first.returncode == 0, first.stderr
    assert f"created the database {url} (schema {head_revision()})" in first.stdout
    assert check_current(url) == head_revision()
    with sqlite3.connect(data_dir / "ivr.db") as conn:  # WAL is a property of the file
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert (data_dir / "ivr.toml").is_file() and (data_dir / "secrets.toml").is_file()

    second = ivr(env, "init")
    assert second.returncode == 0, second.stderr
    assert "database" not in second.stdout  # nothing changed, nothing said
    done = ivr(env, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert "already at the newest schema" in done.stdout
    check = ivr(env, "db", "check")
    assert (check.returncode, check.stdout.strip()) == (
        0,
        f"database {url}: at the newest schema ({head_revision()})",
    )


def test_ivr_db_upgrade_and_check_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    name = f"ivr_cli_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres_url, name)
    try:
        env = {"IVR_DATA_DIR": str(tmp_path), "IVR_DATABASE_URL": url}
        check = ivr(env, "db", "check")
        assert check.returncode == 3, check.stdout + check.stderr
        assert "has no schema" in check.stdout and "ivr db upgrade" in check.stdout
        done = ivr(env, "db", "upgrade")
        assert done.returncode == 0, done.stderr
        assert f"upgraded empty -> {head_revision()}" in done.stdout
        password = sa.make_url(url).password
        assert password and password not in done.stdout + check.stdout  # masked
        assert ivr(env, "db", "check").returncode == 0
        assert check_current(url) == head_revision()
    finally:
        drop_database(postgres_url, name)


def test_ivr_db_upgrade_reports_an_unreachable_database(tmp_path: Path) -> None:
    from tests.support.ports import free_port

    port = free_port(also_udp=False)  # nothing listens there
    url = f"postgresql://ivr:topsecret@127.0.0.1:{port}/ivr"
    done = ivr({"IVR_DATA_DIR": str(tmp_path), "IVR_DATABASE_URL": url}, "db", "upgrade")
    assert done.returncode == 2
    assert done.stderr.startswith(f"ivr: error: database postgresql://ivr:***@127.0.0.1:{port}/")
    assert "Connection refused" in done.stderr
    assert "topsecret" not in done.stderr
    assert "Traceback" not in done.stderr

"""The migrated database holds the one outcome vocabulary: its CHECK constraints allow
exactly the named subsets of ``ivr.outcome.Outcome`` (the values as they were stored before
the vocabulary was unified: no migration), and rows read back as the members themselves."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ivr.outcome import ATTEMPT_OUTCOMES, CALL_STATUSES, Outcome
from ivr.store import repo
from ivr.store.db import session_scope
from ivr.store.models import Call

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _allowed(engine: Engine, table: str, column: str) -> set[str]:
    checks = sa.inspect(engine).get_check_constraints(table)
    [check] = [c for c in checks if c["name"] == f"ck_{table}_{column}"]
    return set(re.findall(r"'([^']*)'", check["sqltext"]))


def test_the_databases_checks_allow_exactly_the_named_subsets(engine: Engine) -> None:
    assert _allowed(engine, "calls", "status") == {o.value for o in CALL_STATUSES}
    assert _allowed(engine, "attempts", "outcome") == {o.value for o in ATTEMPT_OUTCOMES}
    for table, column in (("calls", "status"), ("attempts", "outcome")):
        assert _allowed(engine, table, column) <= {o.value for o in Outcome}


def test_a_calls_status_reads_back_as_the_member(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        call = repo.create_call(
            s,
            call_id="c1",
            direction="outbound",
            flow_id="f",
            flow_version="1",
            channel_id="out-c1",
            node_name="n",
            language="fi",
            line_number=None,
            remote_number="+358401234567",
            started_at=NOW,
        )
        assert call.status is Outcome.ACTIVE
    with session_scope(sessions) as s:
        assert repo.end_call(s, "c1", Outcome.TRANSFERRED, cause=16, at=NOW)
    with session_scope(sessions) as s:
        got = s.get(Call, "c1")
        assert got is not None and got.status is Outcome.TRANSFERRED
        raw = s.execute(sa.text("SELECT status FROM calls WHERE id = 'c1'")).scalar_one()
        assert raw == "transferred" and type(raw) is str
        for not_a_status in (Outcome.ANSWERED, Outcome.SKIPPED):
            with pytest.raises(sa.exc.StatementError, match="is not among the defined"):
                s.execute(sa.select(Call.id).where(Call.status == not_a_status)).all()

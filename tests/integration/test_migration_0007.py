"""Migration 0007 gives the rows made before it their organisation and campaign, and
keeps what the reviewers and advisors had done (reviewed transcripts, closed requests)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from ivr.store.db import make_engine
from ivr.store.migrate import alembic_config, upgrade

AT = "2026-03-02 10:00:00"  # a UTC timestamp as both backends take it in SQL


def _insert(conn: sa.Connection, table: str, **values: object) -> None:
    columns = ", ".join(values)
    marks = ", ".join(f":{k}" for k in values)
    conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"), values)


def _call(conn: sa.Connection, call_id: str, **values: object) -> None:
    _insert(
        conn, "calls", id=call_id, flow_id="f", flow_version="1", language="fi",
        channel_id=f"ch-{call_id}", node_name="n", status="completed", started_at=AT,
        **{"direction": "outbound", **values},
    )  # fmt: skip


def test_0007_backfills_owners_review_states_and_callback_statuses(db_url: str) -> None:
    upgrade(db_url)
    command.downgrade(alembic_config(db_url), "0006")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            _insert(conn, "organisations", id="org", name="Alfala", timezone="Europe/Helsinki",
                    language="fi", created_at=AT)  # fmt: skip
            _insert(conn, "flows", id="flow", org_id="org", name="F", yaml="x",
                    updated_at=AT, updated_by="t")  # fmt: skip
            _insert(conn, "inbound_lines", id="line", org_id="org", number="+358291234567",
                    flow_id="flow", language="", anonymous=False, enabled=True,
                    updated_at=AT)  # fmt: skip
            _insert(conn, "campaigns", id="camp", name="K", org_id="org", flow_path="p",
                    timezone="Europe/Helsinki", windows="mon-fri 10:00-20:00",
                    allow_holidays=False, max_attempts=3, retry_busy_minutes=1,
                    retry_no_answer_minutes=1, retry_failed_minutes=1, calls_per_second=1,
                    max_concurrent=1, default_language="fi", cross_campaign_daily_cap=True,
                    status="completed", created_at=AT)  # fmt: skip
            _insert(conn, "contacts", id="contact", campaign_id="camp", phone="+358401234567",
                    language="fi", attributes="{}", source_line=2, created_at=AT)  # fmt: skip
            _insert(conn, "attempts", id="attempt", campaign_id="camp", contact_id="contact",
                    phone="+358401234567", attempt_no=1, state="done", due_at=AT,
                    outcome="completed", created_at=AT)  # fmt: skip
            _call(conn, "out", attempt_id="attempt")
            _call(conn, "in", direction="inbound", line_number="+358291234567")
            _call(conn, "stray", direction="inbound", line_number="+358299999999")
            for n, call_id in enumerate(("out", "in"), start=1):
                _insert(conn, "recordings", id=n, call_id=call_id, node_id=f"open{n}",
                        path=f"/r/{n}.wav", duration_seconds=3.0, language="fi",
                        created_at=AT)  # fmt: skip
                _insert(conn, "transcripts", id=n, recording_id=n, call_id=call_id,
                        engine="e", model="m", language="fi", machine_text="t",
                        segments="[]", reviewed=n == 1, created_at=AT,
                        updated_at=AT)  # fmt: skip
            for n, status in enumerate(("closed", "new", "contacted"), start=1):
                _insert(conn, "callback_requests", id=n, call_id="out", channel="phone",
                        consent_version="v1", language="fi", status=status,
                        created_at=AT)  # fmt: skip
        upgrade(db_url)
        with engine.connect() as conn:

            def rows(query: str) -> list[tuple[object, ...]]:
                return [tuple(r) for r in conn.execute(sa.text(query))]

            assert rows("SELECT id, org_id, campaign_id FROM calls ORDER BY id") == [
                ("in", "org", None),
                ("out", "org", "camp"),
                ("stray", None, None),
            ]
            assert rows(
                "SELECT id, org_id, campaign_id, node_id, review_state FROM transcripts ORDER BY id"
            ) == [(1, "org", "camp", "open1", "reviewed"), (2, "org", None, "open2", "new")]
            keys = [r[0] for r in rows("SELECT sample_key FROM transcripts")]
            assert all(0 <= float(str(k)) < 1 for k in keys) and len(set(keys)) == 2
            assert rows("SELECT id, status, org_id, campaign_id FROM callback_requests "
                        "ORDER BY id") == [
                (1, "resolved", "org", "camp"),
                (2, "new", "org", "camp"),
                (3, "contacted", "org", "camp"),
            ]  # fmt: skip
            # Tables copied in batch mode (SQLite) keep their children: nothing cascades.
            assert rows("SELECT (SELECT count(*) FROM contacts), (SELECT count(*) FROM "
                        "attempts), (SELECT count(*) FROM recordings)") == [(1, 1, 2)]  # fmt: skip
            assert rows("SELECT billing_rule, public_slug, public_info FROM campaigns") == [
                ("60/60", None, "{}")
            ]
    finally:
        engine.dispose()

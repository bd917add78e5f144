"""Engines and sessions: SQLite (WAL) embedded, PostgreSQL (psycopg 3) for scale-out.

Nothing is created at import time: the composition root calls ``make_engine`` with the
configured URL (``Settings.database_url``) and hands the engine (or a session factory) on.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Execution option: on SQLite, take the write lock when the transaction begins, so that
# writers queue up (busy timeout) instead of failing when a read turns into a write.
# PostgreSQL ignores it.  ``with engine.connect() as c: c.execution_options(**{...: True})``
BEGIN_IMMEDIATE = "ivr_begin_immediate"
# Execution option of a read-only engine (``reader_for``): on SQLite its transactions begin
# DEFERRED, so a long read (a report over 100,000 attempts) holds no lock and never makes
# the telephony worker's writes wait; under WAL it reads a consistent snapshot.
READ_ONLY = "ivr_read_only"


# SQLSTATEs of a transaction PostgreSQL aborted so that others could go on: a deadlock it
# broke (40P01) or a serialization conflict (40001). Running the whole transaction again is
# the documented remedy; nothing of it was committed.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
RETRIES = 3
T = TypeVar("T")


def retryable(exc: BaseException) -> bool:
    """Whether ``exc`` (a SQLAlchemy error) means PostgreSQL aborted the transaction to break
    a deadlock or a serialization conflict: the transaction may simply run again."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) in RETRYABLE_SQLSTATES


def in_transaction(
    factory: sessionmaker[Session],
    work: Callable[[Session], T],
    retries: int = RETRIES,
    retry_if: Callable[[sa.exc.DBAPIError], bool] = retryable,
) -> T:
    """``work`` in a transaction of its own, run again (up to ``retries`` times, after a
    short pause) when the database error says so (``retry_if``; by default: PostgreSQL
    aborted it to break a deadlock). Staff actions use it: a campaign stopped while a
    telephony worker claims its attempts locks the same rows in the other order (the
    campaign, then its attempts; the worker: attempts, then the campaign's counters and
    status), and one of the two is the deadlock's victim. The telephony worker's database
    writer uses it too, retrying a busy SQLite as well."""
    for attempt in range(retries + 1):
        try:
            with factory.begin() as s:
                return work(s)
        except sa.exc.DBAPIError as exc:
            if attempt >= retries or not retry_if(exc):
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def normalise_url(url: str | URL) -> URL:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (not psycopg2, not installed)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a file-based SQLite URL; None for other databases and ``:memory:``."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_wal(cursor: Any) -> None:
    """Switch the file to WAL (once: the mode is kept in the file).

    SQLite answers "database is locked" at once, without its busy handler, when another
    connection holds a lock while this one changes the journal mode: retry for a while.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see the
    # "begin" listener): this makes DDL transactional, so a failed migration rolls back.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _sqlite_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, much faster commits
    finally:
        cursor.close()


def _sqlite_on_begin(connection: sa.Connection) -> None:
    # IMMEDIATE unless read-only: a deferred transaction that reads and then writes cannot
    # wait for another writer (SQLite answers "database is locked" at once, bypassing the
    # busy timeout, to avoid a deadlock). Taking the write lock at BEGIN makes writers queue.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def sqlite_foreign_keys_off(connection: sa.Connection) -> Iterator[None]:
    """On SQLite, foreign keys off for what runs inside (a migration), then checked and on.

    A migration in batch mode copies a table, drops the old one and renames the copy; with
    foreign keys on, the DROP deletes the rows first and their ON DELETE CASCADE empties
    the child tables (a campaign's contacts and attempts, a call's answers). The pragma is
    a no-op inside a transaction, so it is set on the driver's connection before one
    begins; afterwards ``PRAGMA foreign_key_check`` must find nothing broken. Other
    databases: nothing to do.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
        broken = driver.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migration left rows with broken foreign keys: {broken[:5]}")
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def make_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    The folder of a SQLite file is created if missing.
    """
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, echo=echo)
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if backend == "postgresql":
        return sa.create_engine(parsed, echo=echo, pool_pre_ping=True)
    raise ValueError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (no lazy reload of plain columns)."""
    return sessionmaker(engine, expire_on_commit=False)


def reader_for(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions for reading only, on the same engine as ``factory`` (see ``READ_ONLY``)."""
    bind = factory.kw["bind"]
    return sessionmaker(bind.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


@contextmanager
def session_scope(bind: Engine | sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on an exception."""
    factory = make_session_factory(bind) if isinstance(bind, Engine) else bind
    with factory() as session, session.begin():
        yield session

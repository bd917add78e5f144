"""Run the Alembic migrations from code: no alembic.ini, the scripts live in the package.

``upgrade(url)`` brings a database (empty or older) to the newest revision, in one
transaction; on PostgreSQL an advisory lock makes workers that start together take turns.
``check_current(url)`` is what a service calls at start: it refuses a database that is
not exactly at the newest revision, and says what to run.

A new revision, for developers (compare the models with a database at head)::

    python -c "from ivr.store.migrate import revision; revision('sqlite:////tmp/x.db', 'msg')"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ivr.store.db import (
    BEGIN_IMMEDIATE,
    make_engine,
    normalise_url,
    safe_url,
    sqlite_foreign_keys_off,
    sqlite_path,
)
from ivr.store.errors import DatabaseNotCurrent, MigrationError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key: "ivr migrate" as an arbitrary fixed 64-bit number.
ADVISORY_LOCK_KEY = 0x6976725F6D6967

__all__ = [
    "DatabaseNotCurrent",
    "MigrationError",
    "UpgradeResult",
    "check_current",
    "current_revision",
    "head_revision",
    "upgrade",
]


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None  # None: the database had no schema yet
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config(url: str | None = None, connection: sa.Connection | None = None) -> Config:
    """An Alembic ``Config`` built in code, pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        text = normalise_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise MigrationError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def _current(connection: sa.Connection) -> str | None:
    heads = MigrationContext.configure(connection).get_current_heads()
    if len(heads) > 1:
        raise MigrationError(f"the database has several schema revisions: {', '.join(heads)}")
    return heads[0] if heads else None


def _lock(connection: sa.Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        )


def upgrade(url: str, revision: str = "head") -> UpgradeResult:
    """Migrate the database at ``url`` to ``revision`` (default: the newest). Idempotent."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection, sqlite_foreign_keys_off(connection):
            connection.execution_options(**{BEGIN_IMMEDIATE: True})  # SQLite: one at a time
            with connection.begin():
                _lock(connection)  # PostgreSQL: one at a time
                before = _current(connection)
                command.upgrade(alembic_config(connection=connection), revision)
                after = _current(connection)
    except sa.exc.OperationalError as exc:
        raise MigrationError(f"database {safe_url(url)}: {exc.orig or exc}") from exc
    finally:
        engine.dispose()
    if after is None:  # pragma: no cover - "head" always leaves a revision
        raise MigrationError(f"database {safe_url(url)}: no revision after the upgrade")
    return UpgradeResult(before, after)


def current_revision(url: str) -> str | None:
    """The database's schema revision; None when it has none (never migrated)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return _current(connection)
    except sa.exc.OperationalError as exc:
        raise MigrationError(f"database {safe_url(url)}: {exc.orig or exc}") from exc
    finally:
        engine.dispose()


def check_current(url: str) -> str:
    """The head revision if the database is at it; else ``DatabaseNotCurrent``."""
    where = safe_url(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise DatabaseNotCurrent(
            f"database {where}: the file does not exist; run `ivr init` or `ivr db upgrade`"
        )
    head = head_revision()
    current = current_revision(url)
    if current == head:
        return head
    if current is None:
        raise DatabaseNotCurrent(
            f"database {where} has no schema (expected revision {head}); run `ivr db upgrade`"
        )
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current not in known:
        raise DatabaseNotCurrent(
            f"database {where} is at revision {current}, which this version of ivr does not "
            f"know (expected {head}); is a newer ivr using it?"
        )
    raise DatabaseNotCurrent(
        f"database {where} is at revision {current}, expected {head}; run `ivr db upgrade`"
    )


def revision(url: str, message: str, *, autogenerate: bool = True) -> None:
    """Write a new migration script (developers; the database should be at head)."""
    command.revision(alembic_config(url), message=message, autogenerate=autogenerate)

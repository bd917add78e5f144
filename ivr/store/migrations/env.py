"""Alembic environment, run by ``ivr.store.migrate`` (no alembic.ini needed).

``ivr.store.migrate`` passes an open connection (already in a transaction, and on
PostgreSQL holding an advisory lock) as ``config.attributes["connection"]``; the whole
upgrade then commits or rolls back as one. Without one, an engine is made from the
``sqlalchemy.url`` main option.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from ivr.store.db import make_engine, sqlite_foreign_keys_off
from ivr.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations use batch (copy-and-move) mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: set the sqlalchemy.url option or pass a connection")
    engine = make_engine(url)
    try:
        with engine.connect() as conn, sqlite_foreign_keys_off(conn):
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

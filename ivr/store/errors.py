"""Storage errors, importable without loading SQLAlchemy (the CLI catches them)."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used as asked; the message says why and what to do."""


class MigrationError(StoreError):
    """The database cannot be reached or migrated."""


class DatabaseNotCurrent(MigrationError):
    """The database's schema is not the one this version of ivr expects."""

"""Alembic migrations of the ivr database (run by ``ivr.store.migrate``)."""

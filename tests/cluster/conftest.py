"""The cluster's store tests use the integration tests' databases: every test on a new
SQLite file and on a new database of the test PostgreSQL (``sessions``)."""

from tests.integration.conftest import db_url, engine, sessions

__all__ = ["db_url", "engine", "sessions"]

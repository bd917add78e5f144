from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr.bootstrap import App
from tests.support.instance import destroy, make_instance, start_or_fail
from tests.support.postgres import PostgresUnavailable, start_postgres

# The fixtures that start (or share) the real Asterisk. A test that requests one, directly
# or through another fixture, must carry the ``pbx`` marker (``@pytest.mark.pbx`` or the
# module's ``pytestmark``), so that ``-m pbx`` and ``-m "not pbx"`` choose truthfully.
# Helpers that start an Asterisk of their own (make_instance, ServiceThread, Baresip, ...)
# are found in the test files by tests/unit/test_pbx_markers.py.
PBX_FIXTURES = frozenset({"pbx_instance", "pbx_app"})


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects anything
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [
        f"{item.nodeid} (uses {', '.join(sorted(PBX_FIXTURES & set(fixtures)))})"
        for item in items
        if (fixtures := getattr(item, "fixturenames", ()))
        and PBX_FIXTURES & set(fixtures)
        and item.get_closest_marker("pbx") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests need Asterisk but have no pbx marker (add @pytest.mark.pbx or "
            "pytestmark = pytest.mark.pbx):\n  " + "\n  ".join(unmarked)
        )


@pytest.fixture(scope="session")
def pbx_instance() -> Iterator[tuple[App, dict[str, str]]]:
    """One real Asterisk for the whole session, on private ports and a private data dir."""
    app, env = make_instance()
    start_or_fail(app)
    yield app, env
    destroy(app)


@pytest.fixture()
def pbx_app(pbx_instance: tuple[App, dict[str, str]]) -> App:
    app, _ = pbx_instance
    if app.pbx().pid() is None:  # a test that restarts Asterisk may have left it down
        start_or_fail(app)
    return app


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL (Debian's packages) for the whole session: the superuser's URL.

    It points at the maintenance database ``postgres``; tests make their own database with
    ``tests.support.postgres.create_database``. A server that cannot start fails the test.
    """
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)
    try:
        yield server.url()
    finally:
        server.stop()

"""A private ivr data directory with its own ports, and a real Asterisk for it."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ivr.bootstrap import App, init
from ivr.clock import MovableClock
from ivr.config import load_settings
from ivr.pbx import tree
from tests.support.ports import free_port, free_range
from tests.support.postgres import (
    PostgresServer,
    PostgresUnavailable,
    create_database,
    start_postgres,
)


def instance_env(data_dir: Path, rtp_size: int = 400) -> dict[str, str]:
    """Environment variables for an instance on free ports."""
    # Parallel test workers (pytest-xdist) get ranges of their own.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    rtp = free_range(rtp_size, start=20000 + (index % 5) * 8000 + (os.getpid() % 10) * 400)
    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        if not rtp <= port < rtp + rtp_size and port not in ports:
            ports.append(port)
    env = {
        "IVR_DATA_DIR": str(data_dir),
        "IVR_PBX_SIP_PORT": str(ports[0]),
        "IVR_PBX_AMI_PORT": str(ports[1]),
        "IVR_PBX_ARI_PORT": str(ports[2]),
        "IVR_PBX_RTP_START": str(rtp),
        "IVR_PBX_RTP_END": str(rtp + rtp_size - 1),
        "IVR_TELEPHONY_ARI_RECONNECT_MAX": "1.0",
    }
    if os.environ.get("IVR_TEST_DATABASE") == "postgresql":
        env["IVR_DATABASE_URL"] = _postgres_database()
    return env


_server: PostgresServer | None = None


def _postgres_database() -> str:
    """IVR_TEST_DATABASE=postgresql: every instance gets a database on one real server
    (started once per test process and stopped at its exit)."""
    global _server
    if _server is None:
        try:
            _server = start_postgres()
        except PostgresUnavailable as exc:
            pytest.fail(f"IVR_TEST_DATABASE=postgresql, but PostgreSQL cannot start: {exc}")
        atexit.register(_server.stop)
    return create_database(_server.url(), f"ivr_i_{uuid.uuid4().hex[:12]}")


def make_instance(
    prefix: str = "ivr-t-", extra: Callable[[dict[str, str]], dict[str, str]] | None = None
) -> tuple[App, dict[str, str]]:
    """An initialised instance on free ports, for a test that starts its Asterisk (such a
    test carries the ``pbx`` marker; tests/unit/test_pbx_markers.py checks)."""
    return initialised_instance(prefix, extra)


def initialised_instance(
    prefix: str = "ivr-t-", extra: Callable[[dict[str, str]], dict[str, str]] | None = None
) -> tuple[App, dict[str, str]]:
    """An initialised instance (data directory, config, secrets, database) on free ports;
    ``extra`` adds settings, given the base environment (its ports). Starts nothing: the
    web tests use it without Asterisk."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    env = instance_env(data_dir)
    if extra is not None:
        env.update(extra(env))
    try:
        # One movable clock for the whole instance (admin, dialer, sessions, store), on the
        # wall clock until a test sets it.
        app, _ = init(load_settings(environ=env), clock=MovableClock())
    except Exception:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return app, env


@contextlib.contextmanager
def running_instance(
    prefix: str = "ivr-t-", extra: Callable[[dict[str, str]], dict[str, str]] | None = None
) -> Iterator[tuple[App, dict[str, str]]]:
    """``make_instance`` with its Asterisk started; destroyed afterwards."""
    app, env = make_instance(prefix, extra)
    try:
        start_or_fail(app)
        yield app, env
    finally:
        destroy(app)


def build_or_fail(app: App) -> None:
    """Provision Asterisk; a failure fails the test run with the reason (never a skip)."""
    try:
        tree.build(app.settings, lambda line: None)
    except tree.PbxError as exc:
        pytest.fail(f"the real Asterisk could not be provisioned: {exc}", pytrace=False)


def start_or_fail(app: App) -> None:
    build_or_fail(app)
    try:
        app.pbx().start()
    except tree.PbxError as exc:
        pytest.fail(f"the real Asterisk could not start: {exc}", pytrace=False)


def destroy(app: App) -> None:
    app.pbx().stop()
    shutil.rmtree(app.settings.data_dir, ignore_errors=True)

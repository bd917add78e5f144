"""Webhook tests: a real database (SQLite and PostgreSQL), the sample receiver on loopback,
the MovableClock driving the retry schedule."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.clock import MovableClock
from ivr.store.org_models import Membership, Organisation, Role, User
from tests.integration.conftest import db_url, engine, sessions  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def load_receiver() -> ModuleType:
    """webhooks/receiver.py, the sample an integrator copies (not a package)."""
    name = "webhook_sample_receiver"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "webhooks" / "receiver.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def clock() -> MovableClock:
    now = datetime.now(UTC)
    return MovableClock(now.replace(microsecond=0))


@pytest.fixture()
def org(sessions: sessionmaker[Session]) -> Iterator[str]:  # noqa: F811
    with sessions.begin() as s:
        o = Organisation(name="Uusikaupunki")
        s.add(o)
        s.flush()
        for email, role in (("admin@uki.fi", Role.ADMIN), ("boss@uki.fi", Role.ADMIN),
                            ("rev@uki.fi", Role.REVIEWER)):  # fmt: skip
            u = User(email=email, password_hash="x")
            s.add(u)
            s.flush()
            s.add(Membership(user_id=u.id, org_id=o.id, role=role))
        org_id = o.id
    yield org_id


def count(sessions: sessionmaker[Session], sql: str) -> int:  # noqa: F811
    with sessions() as s:
        return int(s.scalar(sa.text(sql)) or 0)

"""A real call whose answers land in a real PostgreSQL (the scale-out database)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.bootstrap import init
from ivr.config import EXAMPLE_FLOWS, load_settings
from ivr.flows.loader import load_flow
from ivr.telephony import personas as P
from ivr.telephony.simscript import plan_steps
from tests.support.instance import destroy, instance_env, start_or_fail
from tests.support.postgres import create_database, drop_database
from tests.support.telephony import ServiceThread

pytestmark = pytest.mark.pbx


@pytest.fixture()
def pg_service(postgres_url: str, tmp_path: Path) -> Iterator[ServiceThread]:
    name = f"ivr_e2e_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres_url, name)
    env = {**instance_env(tmp_path / "data"), "IVR_DATABASE_URL": url}
    app, _ = init(load_settings(environ=env))  # migrates the PostgreSQL database
    start_or_fail(app)
    try:
        with ServiceThread(app) as svc:
            yield svc
    finally:
        destroy(app)
        drop_database(postgres_url, name)


def test_answers_of_a_live_call_are_stored_in_postgresql(pg_service: ServiceThread) -> None:
    svc = pg_service
    assert svc.parts.engine.dialect.name == "postgresql"
    flow = load_flow(EXAMPLE_FLOWS / "survey-call-in.yaml")
    svc.parts.prompts.prerender(flow)
    plan = [
        ("lang", "2"),
        ("welcome", ""),
        ("services", "3"),
        ("develop-area", "0"),
        ("develop-area", "5"),
        ("recommend", "hangup"),
    ]
    steps = plan_steps(svc.parts.prompts, flow, plan, "fi")

    async def go() -> tuple[str, str]:
        out = await svc.service.call(
            P.number_for(901, 77), flow, "fi", variables=P.script_variables(steps)
        )
        return out.call_id, await asyncio.wait_for(asyncio.shield(out.done), 90)

    call_id, status = svc.run(go())
    assert status == "partial"
    call = svc.parts.store.call(call_id)
    assert call is not None
    assert call.status.value == "partial" and call.language == "sv"
    values = [(a.node_id, a.value) for a in sorted(call.answers, key=lambda a: a.seq)]
    # "0" is no option here (and this line has no opt-out key): asked again, then "5".
    assert values == [("lang", "sv"), ("services", "3"), ("develop-area", "environment")]
    assert call.started_at.tzinfo is not None

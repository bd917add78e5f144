"""The seeded results (tests/support/results.py) hold what their plans say, with each row
of the staff's work scoped to its organisation and campaign (migration 0007)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from ivr.services import Services
from ivr.store.models import Attempt, Call, CallbackRequest, TranscriptRow
from tests.support.results import seed_results
from tests.web.conftest import Users, unique


def test_the_seed_holds_its_plans_scoped_to_the_organisation(
    services: Services, users: Users, tmp_path: Path
) -> None:
    seeded = seed_results(services, users.a.manager.actor(), tmp_path, name=unique("Tulos"))
    with services.factory() as s:
        finals = Counter(
            s.scalars(
                sa.select(Attempt.outcome)
                .where(Attempt.campaign_id == seeded.campaign_id)
                .order_by(Attempt.contact_id, Attempt.attempt_no)
            )
        )
        calls = s.scalars(sa.select(Call).where(Call.campaign_id == seeded.campaign_id)).all()
        transcripts = s.scalars(
            sa.select(TranscriptRow).where(TranscriptRow.id.in_(seeded.transcript_ids))
        ).all()
        callbacks = s.scalars(
            sa.select(CallbackRequest).where(CallbackRequest.id.in_(seeded.callback_ids))
        ).all()
    planned = Counter(o for p in seeded.plans for o in p.outcomes)
    assert {k.value: v for k, v in finals.items()} == dict(planned)
    assert {c.org_id for c in calls} == {users.a.manager.org_id}
    assert len(transcripts) == sum(1 for p in seeded.plans if p.words) == 5
    assert all(t.org_id == users.a.manager.org_id for t in transcripts)
    assert {t.node_id for t in transcripts} == {"develop-open"}
    assert all(t.campaign_id == seeded.campaign_id for t in transcripts)
    assert len(callbacks) == 3 and all(c.org_id == users.a.manager.org_id for c in callbacks)
    assert all(path.stat().st_size > 1000 for path in seeded.recordings)

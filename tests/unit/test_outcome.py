from __future__ import annotations

import pytest

from ivr.telephony.outcome import Outcome, classify


@pytest.mark.parametrize(
    ("answered", "cause", "sip", "expected"),
    [
        (True, 16, None, Outcome.ANSWERED),
        (True, 17, 486, Outcome.ANSWERED),  # answered wins
        (False, 17, 486, Outcome.BUSY),
        (False, 17, 603, Outcome.DECLINED),  # 603 is reported with cause 17 by some paths
        (False, 21, 603, Outcome.DECLINED),
        (False, 21, None, Outcome.DECLINED),
        (False, 1, 404, Outcome.UNALLOCATED),
        (False, 1, None, Outcome.UNALLOCATED),
        (False, 19, 480, Outcome.NO_ANSWER),
        (False, 0, None, Outcome.NO_ANSWER),
        (False, None, None, Outcome.NO_ANSWER),
        (False, 34, 503, Outcome.FAILED),
        (False, 38, None, Outcome.FAILED),
        (False, 17, None, Outcome.BUSY),
    ],
)
def test_classify(answered: bool, cause: int | None, sip: int | None, expected: Outcome) -> None:
    assert classify(answered, cause, sip) is expected

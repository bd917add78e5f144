"""AAPOR final dispositions and rates (ivr/campaigns/aapor.py): the precedence between a
contact's attempts, every outcome handled, and the rates on examples computed by hand."""

from __future__ import annotations

import pytest

from ivr.campaigns.aapor import (
    ALWAYS_BUSY,
    CODES,
    COMPLETE,
    MAPPING,
    NO_ANSWER,
    NON_WORKING,
    NOT_ATTEMPTED,
    OTHER_UNKNOWN,
    PARTIAL,
    REFUSAL,
    REFUSAL_AND_BREAK_OFF,
    Disposition,
    DispositionGroup,
    Rates,
    counts,
    disposition,
    rates,
)
from ivr.outcome import Outcome

O = Outcome  # noqa: E741 (short rows in the table below)
G = DispositionGroup


@pytest.mark.parametrize(
    ("outcomes", "attempted", "expected"),
    [
        # nothing placed
        ((), False, NOT_ATTEMPTED),
        ((O.SKIPPED,), False, NOT_ATTEMPTED),
        ((O.SKIPPED, O.SKIPPED), False, NOT_ATTEMPTED),
        ((), True, OTHER_UNKNOWN),  # placed, still in flight
        ((O.SKIPPED,), True, OTHER_UNKNOWN),
        # a completed attempt wins over everything, wherever it is
        ((O.NO_ANSWER, O.BUSY, O.COMPLETED), True, COMPLETE),
        ((O.PARTIAL, O.COMPLETED), True, COMPLETE),
        ((O.COMPLETED, O.OPTED_OUT), True, COMPLETE),
        ((O.DECLINED, O.TRANSFERRED), True, COMPLETE),  # handed to a person: completed
        ((O.SKIPPED, O.UNALLOCATED, O.COMPLETED), True, COMPLETE),
        # then partial
        ((O.PARTIAL, O.OPTED_OUT), True, PARTIAL),
        ((O.DECLINED, O.PARTIAL), True, PARTIAL),
        ((O.PARTIAL, O.FAILED, O.NO_ANSWER), True, PARTIAL),
        # then refusal: opt-out during a call before a rejected call
        ((O.NO_ANSWER, O.OPTED_OUT), True, REFUSAL_AND_BREAK_OFF),
        ((O.DECLINED, O.OPTED_OUT), True, REFUSAL_AND_BREAK_OFF),
        ((O.BUSY, O.DECLINED), True, REFUSAL),
        ((O.DECLINED, O.UNALLOCATED), True, REFUSAL),  # someone answered for the number
        # then a number that does not exist
        ((O.NO_ANSWER, O.UNALLOCATED), True, NON_WORKING),
        ((O.FAILED, O.UNALLOCATED, O.SKIPPED), True, NON_WORKING),
        # busy only when every attempt that reached the network was busy
        ((O.BUSY, O.BUSY, O.BUSY), True, ALWAYS_BUSY),
        ((O.BUSY, O.FAILED, O.INTERRUPTED), True, ALWAYS_BUSY),
        ((O.BUSY, O.SKIPPED), True, ALWAYS_BUSY),
        ((O.BUSY, O.NO_ANSWER, O.BUSY), True, NO_ANSWER),
        ((O.NO_ANSWER, O.NO_ANSWER, O.NO_ANSWER), True, NO_ANSWER),
        ((O.FAILED, O.NO_ANSWER), True, NO_ANSWER),
        # only our own faults
        ((O.FAILED,), True, OTHER_UNKNOWN),
        ((O.FAILED, O.INTERRUPTED, O.SKIPPED), True, OTHER_UNKNOWN),
    ],
)
def test_precedence(outcomes: tuple[Outcome, ...], attempted: bool, expected: Disposition) -> None:
    assert disposition(outcomes, attempted) == expected
    # the order of the attempts never matters for the outcomes the platform has
    assert disposition(tuple(reversed(outcomes)), attempted) == expected


def test_every_outcome_is_handled() -> None:
    not_ends = {O.ACTIVE, O.ANSWERED}
    assert set(MAPPING) == set(Outcome) - not_ends
    for outcome in Outcome:
        if outcome in not_ends:
            with pytest.raises(ValueError, match="not how an attempt ends"):
                disposition([outcome], attempted=True)
        else:
            single = disposition([outcome], attempted=outcome is not O.SKIPPED)
            assert single == MAPPING[outcome], outcome
            assert single in CODES


def test_placed_outcomes_need_attempted() -> None:
    with pytest.raises(ValueError, match="not attempted"):
        disposition([O.SKIPPED, O.BUSY], attempted=False)


def test_codes_are_aapor_codes_in_their_groups() -> None:
    by_code = {d.code: d for d in CODES}
    assert len(by_code) == len(CODES)
    assert {code: d.group for code, d in by_code.items()} == {
        "1.1": G.I,
        "1.2": G.P,
        "2.10": G.R,
        "2.11": G.R,
        "3.11": G.UH,
        "3.12": G.UH,
        "3.13": G.UH,
        "3.90": G.UO,
        "4.31": G.NE,
    }
    assert set(MAPPING.values()) == set(CODES)


def test_worked_example_from_contacts() -> None:
    # 107 contacts, by hand:
    #   I  = 30 (25 completed at once, 5 completed after a no answer)
    #   P  = 10 (8 partial at once, 2 partial after an opt-out: partial beats refusal)
    #   R  = 20 (12 declined = 2.11, 8 opted out = 2.10)
    #   NC = 0, O = 0 (no outcome of the platform maps to 2.20 or 2.30)
    #   UH = 30 (5 never dialled 3.11, 10 always busy 3.12, 15 no answer 3.13)
    #   UO = 10 (only failed or interrupted: 3.90)
    #   NE = 7  (unallocated: 4.31, in no denominator)
    # (I+P) + (R+NC+O) + (UH+UO) = 40 + 20 + 40 = 100
    #   RR1   = I / 100                 = 30 / 100      = 0.30
    #   RR2   = (I+P) / 100             = 40 / 100      = 0.40
    #   COOP1 = I / ((I+P)+R+O)         = 30 / 60       = 0.50
    #   REF1  = R / 100                 = 20 / 100      = 0.20
    #   CON1  = ((I+P)+R+O) / ((I+P)+R+O+NC+(UH+UO)) = 60 / (60+0+40) = 0.60
    contacts: list[tuple[tuple[Outcome, ...], bool, int]] = [
        ((O.COMPLETED,), True, 25),
        ((O.NO_ANSWER, O.COMPLETED), True, 5),
        ((O.PARTIAL,), True, 8),
        ((O.OPTED_OUT, O.PARTIAL), True, 2),
        ((O.DECLINED,), True, 12),
        ((O.BUSY, O.OPTED_OUT), True, 8),
        ((O.SKIPPED,), False, 5),
        ((O.BUSY, O.BUSY, O.BUSY), True, 10),
        ((O.BUSY, O.NO_ANSWER, O.NO_ANSWER), True, 15),
        ((O.FAILED, O.INTERRUPTED), True, 10),
        ((O.UNALLOCATED,), True, 7),
    ]
    finals = [disposition(o, a) for o, a, n in contacts for _ in range(n)]
    assert len(finals) == 107
    per_code = {d.code: sum(f == d for f in finals) for d in CODES}
    assert per_code == {
        "1.1": 30,
        "1.2": 10,
        "2.10": 8,
        "2.11": 12,
        "4.31": 7,
        "3.12": 10,
        "3.13": 15,
        "3.90": 10,
        "3.11": 5,
    }
    tally = counts(finals)
    assert tally == {G.I: 30, G.P: 10, G.R: 20, G.NC: 0, G.O: 0, G.UH: 30, G.UO: 10, G.NE: 7}
    assert rates(tally) == Rates(
        rr1=pytest.approx(0.30),
        rr2=pytest.approx(0.40),
        coop1=pytest.approx(0.50),
        ref1=pytest.approx(0.20),
        con1=pytest.approx(0.60),
    )


def test_rates_with_every_group() -> None:
    # I=2 P=1 R=1 NC=2 O=1 UH=2 UO=1 NE=9 (NE in no formula)
    # (I+P) + (R+NC+O) + (UH+UO) = 3 + 4 + 3 = 10
    #   RR1 = 2/10 = 0.2, RR2 = 3/10 = 0.3, REF1 = 1/10 = 0.1
    #   COOP1 = I / ((I+P)+R+O) = 2 / (3+1+1) = 0.4
    #   CON1 = ((I+P)+R+O) / ((I+P)+R+O+NC+(UH+UO)) = 5 / (5+2+3) = 0.5
    result = rates({G.I: 2, G.P: 1, G.R: 1, G.NC: 2, G.O: 1, G.UH: 2, G.UO: 1, G.NE: 9})
    assert result == Rates(
        rr1=pytest.approx(0.2),
        rr2=pytest.approx(0.3),
        coop1=pytest.approx(0.4),
        ref1=pytest.approx(0.1),
        con1=pytest.approx(0.5),
    )


def test_empty_campaign_has_no_rates() -> None:
    empty = Rates(rr1=None, rr2=None, coop1=None, ref1=None, con1=None)
    assert rates({}) == empty
    assert rates(counts([])) == empty
    assert counts([]) == dict.fromkeys(DispositionGroup, 0)
    # only ineligible numbers: still no denominator
    assert rates({G.NE: 4}) == empty


def test_denominators_empty_one_by_one() -> None:
    # nobody reached: response rates 0.0, cooperation undefined, contact rate 0.0
    assert rates({G.UH: 3}) == Rates(rr1=0.0, rr2=0.0, coop1=None, ref1=0.0, con1=0.0)
    # only non-contacts: CON1 is 0 / 2
    assert rates({G.NC: 2}).con1 == 0.0
    assert rates({G.NC: 2}).coop1 is None


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        rates({G.I: -1})

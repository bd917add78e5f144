"""The one outcome vocabulary (ivr/outcome.py): classification of the network's answer, the
named subsets, and a guard that no second outcome enum, Literal or string map reappears."""

from __future__ import annotations

import ast
import re
import typing
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.campaigns.rules import CallingPolicy, decide_next
from ivr.flows import engine as fe
from ivr.flows.model import Flow, GlobalKeys, Node, Prompt
from ivr.outcome import (
    ATTEMPT_OUTCOMES,
    CALL_ENDS,
    CALL_STATUSES,
    DIAL_RESULTS,
    FLOW_ENDS,
    NOT_ANSWERED,
    PLACED_OUTCOMES,
    DialResult,
    FlowEnd,
    Outcome,
    attempt_outcome,
    classify,
)
from ivr.store.models import Attempt, Base, Call

IVR = Path(__file__).resolve().parents[2] / "ivr"
VOCABULARY = frozenset(o.value for o in Outcome)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


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
    result = classify(answered, cause, sip)
    assert result is expected
    assert result in DIAL_RESULTS


# --------------------------------------------------------------------------- the subsets
def test_the_named_subsets_are_subsets_of_the_one_enum() -> None:
    for subset in (FLOW_ENDS, DIAL_RESULTS, NOT_ANSWERED, CALL_ENDS, PLACED_OUTCOMES):
        assert all(type(o) is Outcome for o in subset)
    assert all(type(o) is Outcome for o in (*CALL_STATUSES, *ATTEMPT_OUTCOMES))
    assert FLOW_ENDS < CALL_ENDS
    assert NOT_ANSWERED < DIAL_RESULTS and NOT_ANSWERED < CALL_ENDS
    assert set(DIAL_RESULTS - CALL_ENDS) == {Outcome.ANSWERED}  # answered is not an end
    assert set(CALL_STATUSES) - CALL_ENDS == {Outcome.ACTIVE}
    assert set(ATTEMPT_OUTCOMES) - PLACED_OUTCOMES == {Outcome.SKIPPED}
    assert set(CALL_ENDS - PLACED_OUTCOMES) == {Outcome.TRANSFERRED}  # attempts: completed
    # Every member is used by some part, and nothing else is in the vocabulary.
    assert set(Outcome) == set(CALL_STATUSES) | set(ATTEMPT_OUTCOMES) | DIAL_RESULTS
    assert len(CALL_STATUSES) == len(set(CALL_STATUSES))
    assert len(ATTEMPT_OUTCOMES) == len(set(ATTEMPT_OUTCOMES))


def test_the_literal_types_name_members_by_identity() -> None:
    assert frozenset(typing.get_args(FlowEnd)) == FLOW_ENDS
    assert frozenset(typing.get_args(DialResult)) == DIAL_RESULTS
    for member in (*typing.get_args(FlowEnd), *typing.get_args(DialResult)):
        assert member is Outcome(member.value)


def test_an_attempt_takes_its_calls_end_by_identity() -> None:
    for end in CALL_ENDS - {Outcome.TRANSFERRED}:
        assert attempt_outcome(end) is end
    assert attempt_outcome(Outcome.TRANSFERRED) is Outcome.COMPLETED
    assert {attempt_outcome(end) for end in CALL_ENDS} == PLACED_OUTCOMES
    for not_an_end in (Outcome.ACTIVE, Outcome.ANSWERED, Outcome.SKIPPED):
        with pytest.raises(ValueError, match="is not how a call ends"):
            attempt_outcome(not_an_end)


def test_the_rules_decide_on_every_placed_outcome_and_nothing_else() -> None:
    for outcome in PLACED_OUTCOMES:
        decide_next(CallingPolicy(), outcome=outcome, attempts_made=1, ended_at=NOW)
    for other in set(Outcome) - PLACED_OUTCOMES:
        with pytest.raises(ValueError, match="unknown outcome"):
            decide_next(CallingPolicy(), outcome=other, attempts_made=1, ended_at=NOW)


# --------------------------------------------------------------------------- the engine
def _flow() -> Flow:
    hello = Prompt(text={"fi": "Hei"})
    return Flow(
        id="t",
        name="t",
        version="1",
        languages=("fi",),
        default_language="fi",
        start="hello",
        nodes={
            "hello": Node(id="hello", kind="say", prompt=hello, next="bye"),
            "bye": Node(id="bye", kind="end", prompt=hello),
        },
        keys=GlobalKeys(),
    )


def _end_of(flow: Flow, events: list[fe.Event]) -> fe.EndCall:
    state = fe.initial_state(flow)
    ends: list[fe.EndCall] = []
    for event in events:
        state, actions = fe.step(flow, state, event, NOW)
        ends += [a for a in actions if isinstance(a, fe.EndCall)]
    assert len(ends) == 1, ends
    return ends[0]


def test_the_engine_ends_calls_with_members_of_the_one_enum() -> None:
    hints = typing.get_type_hints(fe.EndCall)
    assert hints["status"] == FlowEnd
    assert typing.get_type_hints(fe.CallState)["ended_status"] == FlowEnd | None
    flow = _flow()
    completed = _end_of(flow, [fe.Answered(), fe.PromptDone(1), fe.PromptDone(2)])
    assert completed.status is Outcome.COMPLETED
    partial = _end_of(flow, [fe.Answered(), fe.HungUp()])
    assert partial.status is Outcome.PARTIAL


# --------------------------------------------------------------------------- the store
def _check_values(column: sa.Column[object]) -> set[str]:
    [check] = [
        c
        for c in column.table.constraints
        if isinstance(c, sa.CheckConstraint) and c.name == f"ck_{column.table.name}_{column.name}"
    ]
    sql = str(check.sqltext.compile(compile_kwargs={"literal_binds": True}))
    return set(re.findall(r"'([^']*)'", sql))


def test_the_stores_outcome_columns_allow_exactly_the_named_subsets() -> None:
    status = Call.__table__.c.status
    outcome = Attempt.__table__.c.outcome
    assert _check_values(status) == {o.value for o in CALL_STATUSES}
    assert _check_values(outcome) == {o.value for o in ATTEMPT_OUTCOMES}
    dialect = sa.create_engine("sqlite://").dialect
    for column, members in ((status, CALL_STATUSES), (outcome, ATTEMPT_OUTCOMES)):
        for member in members:
            stored = column.type.process_bind_param(member, dialect)  # type: ignore[attr-defined]
            assert stored == member.value
            read = column.type.process_result_value(stored, dialect)  # type: ignore[attr-defined]
            assert read is member


def test_no_other_column_stores_an_outcome() -> None:
    """Every CHECK constraint that lists outcome words is one of the two outcome columns."""
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, sa.String):  # e.g. an HTTP status code
                continue
            if column.name in ("status", "outcome") and (table.name, column.name) not in {
                ("calls", "status"),
                ("attempts", "outcome"),
            }:
                assert len(_check_values(column) & VOCABULARY) <= 1, (table.name, column.name)


# --------------------------------------------------------------------------- the guard
def _str_values(node: ast.expr) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def _second_vocabularies(path: Path, root: Path = IVR.parent) -> list[str]:
    """Enum classes with outcome values, ``Literal[...]`` of outcome strings, and dicts that
    map outcome strings to outcome strings: each a second vocabulary beside ivr/outcome.py."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ClassDef) and any(
            "Enum" in ast.unparse(base) for base in node.bases
        ):
            values = [
                v
                for stmt in node.body
                if isinstance(stmt, ast.Assign)
                for v in _str_values(stmt.value)
                if v in VOCABULARY
            ]
            if len(values) >= 2:
                found.append(f"{where}: enum {node.name} {values}")
        elif (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value).endswith("Literal")
            and len([v for v in _str_values(node.slice) if v in VOCABULARY]) >= 2
        ):
            found.append(f"{where}: {ast.unparse(node)}")
        elif isinstance(node, ast.Dict):
            pairs = [
                (k.value, v.value)
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant)
                and isinstance(v, ast.Constant)
                and k.value in VOCABULARY
                and v.value in VOCABULARY
            ]
            if len(pairs) >= 2:
                found.append(f"{where}: map {pairs}")
    return found


def test_there_is_one_outcome_vocabulary() -> None:
    migrations = IVR / "store" / "migrations"  # history: the CHECKs as they were created
    found = [
        hit
        for path in sorted(IVR.rglob("*.py"))
        if path != IVR / "outcome.py" and migrations not in path.parents
        for hit in _second_vocabularies(path)
    ]
    assert found == [], "use ivr.outcome.Outcome and its named subsets:\n" + "\n".join(found)


def test_the_guard_finds_a_second_vocabulary(tmp_path: Path) -> None:
    """What the five vocabularies this replaced looked like is found."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import enum\nfrom typing import Literal\n"
        "class CallStatus(enum.StrEnum):\n    DONE = 'completed'\n    BUSY = 'busy'\n"
        "EndStatus = Literal['completed', 'partial', 'opted_out', 'transferred']\n"
        "STATUS_OUTCOME = {'transferred': 'completed', 'active': 'interrupted'}\n"
    )
    found = _second_vocabularies(probe, tmp_path)
    assert [hit.split(": ")[1].split(" ")[0] for hit in found] == [
        "enum",
        "Literal['completed',",
        "map",
    ], found

"""The callback worklist's pure rules: which action is allowed from which status, what it
needs (a recorded answer to end a request, a note to reopen one), and when a request is
overdue (an injected ``now``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivr.callbacks import rules
from ivr.callbacks.rules import Action, Change, ChangeRefused
from ivr.config import ConfigError, load_settings
from ivr.store.models import CallbackStatus as S

NOW = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)  # any instant: the rules take it as given


@pytest.mark.parametrize(
    ("status", "action", "kwargs", "after"),
    [
        (S.NEW, Action.ASSIGN, {"assignee": "u1"}, S.ASSIGNED),
        (S.ASSIGNED, Action.ASSIGN, {"assignee": "u2"}, None),  # reassigned, status kept
        (S.CONTACTED, Action.ASSIGN, {"assignee": "u2"}, None),
        (S.NEW, Action.CONTACTED, {}, S.CONTACTED),
        (S.ASSIGNED, Action.CONTACTED, {}, S.CONTACTED),
        (S.NEW, Action.NOTE, {"note": "soitin"}, None),
        (S.RESOLVED, Action.NOTE, {"note": "lisätieto"}, None),
        (S.NEW, Action.RESOLVE, {"resolution": "ohjattu"}, S.RESOLVED),
        (S.ASSIGNED, Action.UNREACHABLE, {"resolution": "3 soittoa"}, S.UNREACHABLE),
        (S.CONTACTED, Action.RESOLVE, {"resolution": "ok"}, S.RESOLVED),
        (S.RESOLVED, Action.REOPEN, {"note": "soitti uudelleen"}, S.NEW),
        (S.RESOLVED, Action.REOPEN, {"note": "x", "has_assignee": True}, S.ASSIGNED),
        (S.UNREACHABLE, Action.REOPEN, {"note": "x"}, S.NEW),
    ],
)
def test_allowed_changes(
    status: S, action: Action, kwargs: dict[str, object], after: S | None
) -> None:
    change = rules.plan(status, action, **kwargs)  # type: ignore[arg-type]
    assert change.status == after


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (S.CONTACTED, Action.CONTACTED),
        (S.RESOLVED, Action.ASSIGN),
        (S.RESOLVED, Action.CONTACTED),
        (S.RESOLVED, Action.RESOLVE),
        (S.UNREACHABLE, Action.RESOLVE),
        (S.NEW, Action.REOPEN),
        (S.CONTACTED, Action.REOPEN),
    ],
)
def test_refused_changes(status: S, action: Action) -> None:
    with pytest.raises(ChangeRefused) as refused:
        rules.plan(status, action, note="n", resolution="r", assignee="u")
    assert refused.value.errors == {"action": "not_allowed"}
    assert action not in rules.allowed_actions(status)


@pytest.mark.parametrize("action", [Action.RESOLVE, Action.UNREACHABLE])
@pytest.mark.parametrize("text", ["", "   \n "])
def test_a_request_ends_only_with_a_recorded_answer(action: Action, text: str) -> None:
    with pytest.raises(ChangeRefused) as refused:
        rules.plan(S.CONTACTED, action, resolution=text, note="a note is not an answer")
    assert refused.value.errors == {"resolution": "required"}


def test_ending_stores_the_trimmed_answer() -> None:
    assert rules.plan(S.NEW, Action.RESOLVE, resolution="  Ohjattu kotihoitoon \n") == Change(
        S.RESOLVED, resolution="Ohjattu kotihoitoon", ends=True
    )


def test_texts_have_limits_and_needs() -> None:
    long = "x" * (rules.MAX_TEXT + 1)
    with pytest.raises(ChangeRefused) as refused:
        rules.plan(S.NEW, Action.RESOLVE, resolution=long, note=long)
    assert refused.value.errors == {"resolution": "too_long", "note": "too_long"}
    with pytest.raises(ChangeRefused) as refused:
        rules.plan(S.NEW, Action.NOTE, note=" ")
    assert refused.value.errors == {"note": "required"}
    with pytest.raises(ChangeRefused) as refused:
        rules.plan(S.RESOLVED, Action.REOPEN)
    assert refused.value.errors == {"note": "required"}
    with pytest.raises(ChangeRefused) as refused:
        rules.plan(S.NEW, Action.ASSIGN, assignee=None)
    assert refused.value.errors == {"assignee": "required"}


def test_reopen_clears_the_end() -> None:
    change = rules.plan(S.UNREACHABLE, Action.REOPEN, note="soitti takaisin")
    assert change.reopens and not change.ends


@pytest.mark.parametrize(
    ("status", "waited", "overdue"),
    [
        (S.NEW, timedelta(hours=47, minutes=59), False),
        (S.NEW, timedelta(hours=48), True),
        (S.ASSIGNED, timedelta(days=5), True),
        (S.CONTACTED, timedelta(days=5), False),  # first contact made: not waiting
        (S.RESOLVED, timedelta(days=5), False),
        (S.UNREACHABLE, timedelta(days=5), False),
        (S.NEW, -timedelta(hours=1), False),  # a clock behind the request
    ],
)
def test_overdue_with_an_injected_now(status: S, waited: timedelta, overdue: bool) -> None:
    assert rules.is_overdue(status, NOW - waited, NOW, 48) is overdue


def test_overdue_follows_the_setting_and_age_is_never_negative() -> None:
    created = NOW - timedelta(hours=5)
    assert rules.is_overdue(S.NEW, created, NOW, 4)
    assert not rules.is_overdue(S.NEW, created, NOW, 6)
    assert rules.overdue_cutoff(NOW, 6) == NOW - timedelta(hours=6)
    assert rules.age(created, NOW) == timedelta(hours=5)
    assert rules.age(NOW + timedelta(minutes=1), NOW) == timedelta(0)


def test_actions_offered_per_status() -> None:
    assert rules.allowed_actions(S.NEW) == (
        Action.ASSIGN, Action.CONTACTED, Action.RESOLVE, Action.UNREACHABLE, Action.NOTE
    )  # fmt: skip
    assert Action.CONTACTED not in rules.allowed_actions(S.CONTACTED)
    for final in rules.FINAL:
        assert rules.allowed_actions(final) == (Action.REOPEN, Action.NOTE)


@pytest.mark.parametrize("hours", ["0", "8761", "-3"])
def test_the_overdue_setting_is_checked_with_a_clear_error(tmp_path: Path, hours: str) -> None:
    environ = {"IVR_DATA_DIR": str(tmp_path), "IVR_WEB_CALLBACK_OVERDUE_HOURS": hours}
    with pytest.raises(ConfigError, match=r"web\.callback_overdue_hours: .* between 1 and 8760"):
        load_settings(environ=environ)


def test_the_overdue_setting_defaults_to_two_days(tmp_path: Path) -> None:
    assert load_settings(environ={"IVR_DATA_DIR": str(tmp_path)}).web.callback_overdue_hours == 48
    environ = {"IVR_DATA_DIR": str(tmp_path), "IVR_WEB_CALLBACK_OVERDUE_HOURS": "12"}
    assert load_settings(environ=environ).web.callback_overdue_hours == 12

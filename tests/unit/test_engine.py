"""The pure flow engine, driven event by event (no I/O, no mocks)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from ivr.flows.engine import (
    TRANSITIONS,
    Action,
    Answered,
    CallState,
    Digit,
    EndCall,
    Event,
    Hangup,
    HungUp,
    OptOut,
    Play,
    PromptDone,
    Record,
    RecordingDone,
    SaveAnswer,
    SaveCallback,
    SetLanguage,
    StartTimer,
    StopPlayback,
    TimerFired,
    Transfer,
    TransferDone,
    initial_state,
    step,
    transition_rows,
)
from ivr.flows.model import CallbackStep, Flow, GlobalKeys, Node, Option, Prompt

# Monday 2026-11-23 10:00 in Helsinki (08:00 UTC) and Sunday 2026-11-22 10:00.
MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SUNDAY = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def p(name: str) -> Prompt:
    return Prompt(text={"fi": f"{name} fi", "sv": f"{name} sv"})


NO_INPUT = p("no-input")
INVALID = p("invalid")


def node(id: str, kind: str, **kw: object) -> Node:
    kw.setdefault("prompt", p(id))
    return Node(id=id, kind=kind, no_input=NO_INPUT, invalid=INVALID, **kw)  # type: ignore[arg-type]


def yes_no(next_yes: str | None = None) -> tuple[Option, ...]:
    return (Option("1", "yes", next_yes), Option("2", "no"))


CALLBACK_STEPS = (
    CallbackStep("consent", p("consent"), yes_no()),
    CallbackStep(
        "channel",
        p("channel"),
        (Option("1", "phone"), Option("2", "email"), Option("3", "home_visit")),
    ),
    CallbackStep("time_window", p("time"), (Option("1", "morning"), Option("2", "evening"))),
    CallbackStep("interpreter", p("interp"), (Option("1", "none"), Option("2", "ar"))),
)

NODES = [
    node("intro", "say", next="lang"),
    node("lang", "language", options=(Option("1", "fi"), Option("2", "sv")), next="q1"),
    node(
        "q1",
        "choice",
        options=(Option("1", "yes", "grade"), Option("2", "no", "age")),
        next="grade",
        retries=1,
        fallback="grade",
    ),
    node("grade", "scale", min_value=1, max_value=5, next="age"),
    node("age", "number", min_value=15, max_value=120, max_digits=3, next="develop"),
    node("develop", "open", max_seconds=60, silence_seconds=4, next="contact"),
    node(
        "contact",
        "callback",
        prompt=None,
        steps=CALLBACK_STEPS,
        consent_version="v1",
        declined_next="desk",
        next="desk",
    ),
    node(
        "desk",
        "transfer",
        endpoint="PJSIP/softphone1",
        hours=((0, "08:00", "16:00"),),
        fallback="thanks",
        next="thanks",
    ),
    node("thanks", "end"),
]
FLOW = Flow(
    id="t",
    name="test",
    version="1",
    languages=("fi", "sv"),
    default_language="fi",
    start="intro",
    nodes={n.id: n for n in NODES},
    fallback="thanks",
    keys=GlobalKeys(repeat="*", switch_language="9", opt_out="0"),
    opt_out_prompt=p("opted-out"),
)


class Call:
    """Drives the engine the way the telephony session does, recording every action."""

    def __init__(self, flow: Flow = FLOW, now: datetime = MONDAY) -> None:
        self.flow = flow
        self.now = now
        self.state: CallState = initial_state(flow)
        self.actions: list[Action] = []

    def send(self, event: Event) -> list[Action]:
        self.state, actions = step(self.flow, self.state, event, self.now)
        self.actions.extend(actions)
        return actions

    def last(self, kind: type) -> Action:
        return next(a for a in reversed(self.actions) if isinstance(a, kind))

    def finish_prompt(self) -> list[Action]:
        play = self.last(Play)
        assert isinstance(play, Play)
        return self.send(PromptDone(play.token))

    def keys(self, digits: str) -> None:
        for d in digits:
            self.send(Digit(d))

    def timeout(self) -> list[Action]:
        timer = self.last(StartTimer)
        assert isinstance(timer, StartTimer)
        return self.send(TimerFired(timer.token))

    def answers(self) -> list[tuple[str, str]]:
        return [(a.node_id, a.value) for a in self.actions if isinstance(a, SaveAnswer)]

    def at(self, node_id: str, *, answered_with: Sequence[tuple[str, str]] = ()) -> Call:
        assert self.state.node_id == node_id, (self.state.node_id, node_id)
        return self


def start(language: str | None = None, now: datetime = MONDAY) -> Call:
    call = Call(now=now)
    call.send(Answered(language))
    return call


def to_node(node_id: str, now: datetime = MONDAY) -> Call:
    """A call walked along the main path up to ``node_id`` (its prompt playing)."""
    call = start(now=now)
    path = {
        "intro": "",
        "lang": "P",
        "q1": "P1",
        "grade": "P1P1",
        "age": "P1P1P4",
        "develop": "P1P1P4P42#",
        "contact": "P1P1P4P42#PR",
    }
    path["desk"] = "P1P1P4P42#PRP2"
    path["thanks"] = path["desk"] + ("PT" if now == MONDAY else "")
    for c in path[node_id]:
        if c == "P":
            call.finish_prompt()
        elif c == "R":
            rec = call.last(Record)
            assert isinstance(rec, Record)
            call.send(RecordingDone(rec.token, "/rec/develop.wav", 5.5))
        elif c == "T":
            transfer = call.last(Transfer)
            assert isinstance(transfer, Transfer)
            call.send(TransferDone(transfer.token, connected=False))
        else:
            call.send(Digit(c))
    assert call.state.node_id == node_id, (call.state.node_id, node_id)
    return call


# ------------------------------------------------------------------ the main path
def test_full_survey_by_keys_completes_with_every_answer() -> None:
    call = start()
    first = call.last(Play)
    assert isinstance(first, Play) and first.prompts == (p("intro"),) and first.language == "fi"
    call.finish_prompt()  # intro -> lang
    call.finish_prompt()
    call.keys("2")  # svenska
    assert call.last(SetLanguage) == SetLanguage("sv")
    play = call.last(Play)
    assert isinstance(play, Play) and play.language == "sv" and play.prompts == (p("q1"),)
    call.finish_prompt()
    call.keys("1")  # q1 yes -> grade
    call.finish_prompt()
    call.keys("4")  # grade 4 -> age
    call.finish_prompt()
    call.keys("42#")  # age 42 -> develop
    call.finish_prompt()
    rec = call.last(Record)
    assert rec == Record("develop", 60, 4, True, rec.token)  # type: ignore[union-attr]
    call.send(RecordingDone(rec.token, "/rec/a.wav", 7.25))  # type: ignore[union-attr]
    call.finish_prompt()  # consent prompt
    call.keys("1")
    call.finish_prompt()
    call.keys("3")  # home visit
    call.finish_prompt()
    call.keys("2")  # evening
    call.finish_prompt()
    call.keys("2")  # interpreter: Arabic
    cb = call.last(SaveCallback)
    assert cb == SaveCallback(
        "contact",
        (
            ("consent", "yes"),
            ("channel", "home_visit"),
            ("time_window", "evening"),
            ("interpreter", "ar"),
        ),
        "v1",
        "sv",
    )
    call.finish_prompt()  # desk: "connecting you" (Monday 10:00: open)
    transfer = call.last(Transfer)
    assert isinstance(transfer, Transfer) and transfer.endpoint == "PJSIP/softphone1"
    call.send(TransferDone(transfer.token, connected=False))  # nobody answered -> thanks
    assert call.state.node_id == "thanks"
    call.finish_prompt()
    assert call.actions[-2:] == [EndCall("completed"), Hangup()]
    assert call.answers() == [
        ("lang", "sv"),
        ("q1", "yes"),
        ("grade", "4"),
        ("age", "42"),
        ("develop", "/rec/a.wav"),
        ("contact", "requested"),
    ]
    assert call.state.phase == "ended"


def test_language_preset_by_the_contact() -> None:
    call = start(language="sv")
    play = call.last(Play)
    assert isinstance(play, Play) and play.language == "sv"
    assert start(language="de").state.language == "fi"  # undeclared: the default


# ------------------------------------------------------------------ node kinds, table-driven
@pytest.mark.parametrize(
    ("node_id", "keys", "expected_answer", "next_node"),
    [
        ("lang", "1", ("lang", "fi"), "q1"),
        ("q1", "2", ("q1", "no"), "age"),  # option's own next
        ("q1", "1", ("q1", "yes"), "grade"),
        ("grade", "5", ("grade", "5"), "age"),
        ("grade", "1", ("grade", "1"), "age"),
        ("age", "15#", ("age", "15"), "develop"),
        ("age", "120", ("age", "120"), "develop"),  # max digits ends input without '#'
        ("age", "042#", ("age", "42"), "develop"),
    ],
)
def test_valid_input_is_saved_and_moves_on(
    node_id: str, keys: str, expected_answer: tuple[str, str], next_node: str
) -> None:
    call = to_node(node_id)
    call.finish_prompt()
    call.keys(keys)
    assert call.answers()[-1] == expected_answer
    assert call.state.node_id == next_node


@pytest.mark.parametrize(
    ("node_id", "bad_keys"),
    [
        ("lang", "3"),
        ("q1", "7"),
        ("grade", "6"),
        ("grade", "#"),
        ("age", "9#"),
        ("age", "121#"),
        ("age", "4*"),
    ],
)
def test_invalid_input_replays_with_the_invalid_prompt(node_id: str, bad_keys: str) -> None:
    call = to_node(node_id)
    call.finish_prompt()
    saved = len(call.answers())
    call.keys(bad_keys)
    play = call.last(Play)
    assert isinstance(play, Play)
    if bad_keys.endswith("*"):  # '*' is repeat: the prompt again, digits cleared
        assert play.prompts == (p(node_id),)
        assert call.state.digits == ""
    else:
        assert play.prompts == (INVALID, p(node_id))
        assert call.state.tries == 1
    assert len(call.answers()) == saved
    assert call.state.node_id == node_id


def test_no_input_reprompts_then_takes_the_fallback() -> None:
    call = to_node("q1")  # retries=1, fallback=grade
    call.finish_prompt()
    call.timeout()
    play = call.last(Play)
    assert isinstance(play, Play) and play.prompts == (NO_INPUT, p("q1"))
    call.finish_prompt()
    call.timeout()  # second silence: retries exhausted
    assert call.state.node_id == "grade"
    assert call.answers() == [("lang", "fi")]  # nothing stored for q1


def test_number_input_ends_on_inter_digit_timeout() -> None:
    call = to_node("age")
    call.finish_prompt()
    call.keys("67")
    timer = call.last(StartTimer)
    assert isinstance(timer, StartTimer) and timer.seconds == 3.0  # inter-digit timeout
    call.timeout()
    assert call.answers()[-1] == ("age", "67")


def test_stale_timer_and_stale_prompt_events_are_ignored() -> None:
    call = to_node("q1")
    old_play = call.last(Play)
    call.finish_prompt()
    old_timer = call.last(StartTimer)
    call.keys("7")  # invalid: new prompt, new token
    assert isinstance(old_timer, StartTimer) and isinstance(old_play, Play)
    assert call.send(TimerFired(old_timer.token)) == []
    assert call.send(PromptDone(old_play.token)) == []
    assert call.state.tries == 1


def test_barge_in_stops_the_prompt_and_answers() -> None:
    call = to_node("q1")  # prompt still playing
    actions = call.send(Digit("2"))
    assert actions[0] == StopPlayback()
    assert call.answers()[-1] == ("q1", "no")
    assert call.state.node_id == "age"


def test_barge_in_on_a_number_collects_digits() -> None:
    call = to_node("age")
    actions = call.send(Digit("3"))
    assert actions[0] == StopPlayback() and isinstance(actions[-1], StartTimer)
    call.keys("3#")
    assert call.answers()[-1] == ("age", "33")


def test_keys_during_a_say_prompt_are_ignored_except_global_ones() -> None:
    call = start()
    assert call.send(Digit("5")) == []
    assert call.state.node_id == "intro" and call.state.phase == "prompt"


def test_open_answer_records_then_moves_on() -> None:
    call = to_node("develop")
    assert call.send(Digit("1")) == []  # keys do not skip the question
    call.finish_prompt()
    rec = call.last(Record)
    assert isinstance(rec, Record) and rec.beep and rec.silence_seconds == 4
    assert call.send(Digit("5")) == []  # keys while recording are Asterisk's business
    call.send(RecordingDone(rec.token, "/rec/x.wav", 12.0))
    answer = call.last(SaveAnswer)
    assert answer == SaveAnswer("develop", "open", "/rec/x.wav", "", "fi", 12.0)
    assert call.state.node_id == "contact"


def test_callback_declined_saves_no_request() -> None:
    call = to_node("contact")
    play = call.last(Play)
    assert isinstance(play, Play) and play.prompts == (p("consent"),)
    call.finish_prompt()
    call.keys("2")
    assert not any(isinstance(a, SaveCallback) for a in call.actions)
    assert call.answers()[-1] == ("contact", "declined")
    assert call.state.node_id == "desk"


def test_callback_wrong_key_repeats_only_that_step() -> None:
    call = to_node("contact")
    call.finish_prompt()
    call.keys("1")
    call.finish_prompt()
    call.keys("8")
    play = call.last(Play)
    assert isinstance(play, Play) and play.prompts == (INVALID, p("channel"))
    call.finish_prompt()
    call.keys("1")
    assert call.state.step == 2 and call.state.collected[-1] == ("channel", "phone")


def test_transfer_connected_ends_the_flow_without_hanging_up() -> None:
    call = to_node("desk")
    call.finish_prompt()
    transfer = call.last(Transfer)
    assert isinstance(transfer, Transfer)
    actions = call.send(TransferDone(transfer.token, connected=True))
    assert actions == [EndCall("transferred")]
    assert Hangup() not in actions


def test_transfer_outside_opening_hours_takes_the_fallback() -> None:
    call = to_node("thanks", now=SUNDAY)  # desk is closed on Sundays
    assert not any(isinstance(a, Transfer) for a in call.actions)


# ------------------------------------------------------------------ global keys
def test_repeat_key_replays_the_current_prompt() -> None:
    call = to_node("q1")
    actions = call.send(Digit("*"))
    assert actions[0] == StopPlayback()
    assert isinstance(actions[-1], Play) and actions[-1].prompts == (p("q1"),)
    call.finish_prompt()
    actions = call.send(Digit("*"))  # while waiting for input: no playback to stop
    assert isinstance(actions[0], Play)


def test_switch_language_mid_call_replays_in_the_other_language() -> None:
    call = to_node("grade")
    call.send(Digit("9"))
    assert call.last(SetLanguage) == SetLanguage("sv")
    play = call.last(Play)
    assert isinstance(play, Play) and play.language == "sv" and play.prompts == (p("grade"),)
    call.finish_prompt()
    call.keys("3")
    answer = call.last(SaveAnswer)
    assert isinstance(answer, SaveAnswer) and answer.language == "sv"
    call.keys("9")  # in a number node 9 is a digit, not the language key
    assert call.state.language == "sv" and call.state.digits == "9"


def test_opt_out_key_records_the_opt_out_says_goodbye_and_hangs_up() -> None:
    call = to_node("q1")
    call.finish_prompt()
    call.keys("0")
    assert call.last(OptOut) == OptOut("q1")
    play = call.last(Play)
    assert isinstance(play, Play) and play.prompts == (p("opted-out"),)
    call.finish_prompt()
    assert call.actions[-2:] == [EndCall("opted_out"), Hangup()]


def test_opt_out_key_is_a_digit_inside_a_number() -> None:
    call = to_node("age")
    call.finish_prompt()
    call.keys("20#")
    assert call.answers()[-1] == ("age", "20")
    assert not any(isinstance(a, OptOut) for a in call.actions)


# ------------------------------------------------------------------ hang-up everywhere
@pytest.mark.parametrize("node_id", [n.id for n in NODES])
@pytest.mark.parametrize("while_", ["prompt", "waiting"])
def test_hangup_at_every_node_keeps_the_answers(node_id: str, while_: str) -> None:
    call = to_node(node_id)
    if while_ == "waiting" and node_id not in ("intro",):
        call.finish_prompt()
    given = call.answers()
    if call.state.phase == "ended":
        return  # the end node hung up itself
    actions = call.send(HungUp())
    status = "completed" if node_id == "thanks" else "partial"
    assert actions == [EndCall(status)]  # type: ignore[arg-type]
    assert call.answers() == given
    assert call.send(HungUp()) == []  # a second hang-up changes nothing
    assert call.send(Digit("1")) == []


def test_hangup_while_recording_still_keeps_the_open_answer() -> None:
    call = to_node("develop")
    call.finish_prompt()
    rec = call.last(Record)
    assert isinstance(rec, Record)
    assert call.send(HungUp()) == [EndCall("partial")]
    actions = call.send(RecordingDone(rec.token, "/rec/last-words.wav", 3.0))
    assert actions == [SaveAnswer("develop", "open", "/rec/last-words.wav", "", "fi", 3.0)]


def test_no_fallback_anywhere_ends_the_call() -> None:
    nodes = {"q": node("q", "choice", options=yes_no(), next="e", retries=0), "e": node("e", "end")}
    flow = Flow(
        id="x",
        name="x",
        version="1",
        languages=("fi",),
        default_language="fi",
        start="q",
        nodes=nodes,
    )
    call = Call(flow)
    call.send(Answered())
    call.finish_prompt()
    call.timeout()
    assert call.actions[-2:] == [EndCall("partial"), Hangup()]


def test_the_transition_table_covers_each_pair_once() -> None:
    rows = transition_rows()
    assert len(rows) == len(TRANSITIONS) == len({(r[0], r[1]) for r in rows})
    assert ("record", "RecordingDone", "on_recording_done") in rows

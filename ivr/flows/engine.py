"""The pure flow engine: ``step(flow, state, event, now) -> (state, actions)``.

No I/O: the telephony session feeds events (call answered, key pressed, prompt finished,
recording finished, timer fired, transfer result, hang-up) and carries out the actions
(play, start timer, record, save answer, set language, transfer, hang up, ...).

Every (phase, event) pair is handled by exactly one entry of ``TRANSITIONS``; pairs not in
the table are ignored. Every action that starts something asynchronous (a prompt, a timer,
a recording, a transfer) carries a fresh ``token``; events that come back with an old token
(a prompt that was interrupted, a timer that was superseded) are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from ivr.flows.model import Flow, Node, Option, Prompt
from ivr.outcome import FlowEnd, Outcome

Phase = Literal["start", "prompt", "input", "record", "transfer", "closing", "ended"]


# --------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Answered:
    """The call is answered (outbound) or has entered the line (inbound)."""

    language: str | None = None


@dataclass(frozen=True)
class Digit:
    key: str


@dataclass(frozen=True)
class PromptDone:
    token: int


@dataclass(frozen=True)
class RecordingDone:
    token: int
    path: str
    seconds: float


@dataclass(frozen=True)
class TimerFired:
    token: int


@dataclass(frozen=True)
class TransferDone:
    token: int
    connected: bool


@dataclass(frozen=True)
class HungUp:
    pass


Event = Answered | Digit | PromptDone | RecordingDone | TimerFired | TransferDone | HungUp


# --------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class Play:
    prompts: tuple[Prompt, ...]
    language: str
    token: int


@dataclass(frozen=True)
class StopPlayback:
    pass


@dataclass(frozen=True)
class StartTimer:
    seconds: float
    token: int


@dataclass(frozen=True)
class Record:
    node_id: str
    max_seconds: int
    silence_seconds: int
    beep: bool
    token: int


@dataclass(frozen=True)
class SaveAnswer:
    node_id: str
    kind: str
    value: str
    digits: str
    language: str
    seconds: float | None = None  # open answers: the recording's length


@dataclass(frozen=True)
class SaveCallback:
    node_id: str
    fields: tuple[tuple[str, str], ...]
    consent_version: str
    language: str


@dataclass(frozen=True)
class SetLanguage:
    language: str


@dataclass(frozen=True)
class OptOut:
    node_id: str


@dataclass(frozen=True)
class Transfer:
    endpoint: str
    ring_seconds: int
    token: int


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class EndCall:
    """The flow is over for this call: store its status (the last node is in the state)."""

    status: FlowEnd


Action = (
    Play
    | StopPlayback
    | StartTimer
    | Record
    | SaveAnswer
    | SaveCallback
    | SetLanguage
    | OptOut
    | Transfer
    | Hangup
    | EndCall
)


# --------------------------------------------------------------------------- state
@dataclass(frozen=True)
class CallState:
    node_id: str | None = None
    language: str = ""
    phase: Phase = "start"
    token: int = 0
    tries: int = 0  # failed input attempts at the current node (or callback step)
    digits: str = ""  # number input collected so far
    step: int = 0  # callback: index of the current step
    collected: tuple[tuple[str, str], ...] = ()  # callback: values so far
    completed: bool = False  # reached an end node
    answers: int = 0  # answers saved during the call
    recording_token: int = 0  # a recording in progress (kept across a hang-up)
    ended_status: FlowEnd | None = None


def initial_state(flow: Flow) -> CallState:
    return CallState(language=flow.default_language)


Result = tuple[CallState, list[Action]]
Handler = Callable[[Flow, CallState, Event, datetime], Result]


# --------------------------------------------------------------------------- helpers
INPUT_KINDS = frozenset({"language", "choice", "scale", "number", "callback"})


def _node(flow: Flow, state: CallState) -> Node:
    assert state.node_id is not None
    return flow.nodes[state.node_id]


def _current_prompt(node: Node, state: CallState) -> Prompt | None:
    if node.kind == "callback" and node.steps:
        return node.steps[state.step].prompt
    return node.prompt


def _current_options(node: Node, state: CallState) -> tuple[Option, ...]:
    if node.kind == "callback" and node.steps:
        return node.steps[state.step].options
    return node.options


def _play(state: CallState, prompts: list[Prompt | None]) -> Result:
    """Play the prompts (None entries skipped); with nothing to say, act as if said."""
    token = state.token + 1
    said = tuple(p for p in prompts if p is not None)
    new = replace(state, phase="prompt", token=token)
    if not said:
        return new, [Play((), state.language, token)]
    return new, [Play(said, state.language, token)]


def _enter(flow: Flow, state: CallState, node_id: str | None, now: datetime) -> Result:
    """Go to ``node_id`` (None: the flow has nowhere to go: end the call as it stands)."""
    if node_id is None:
        return _finish(state, hang_up=True)
    node = flow.nodes[node_id]
    state = replace(state, node_id=node_id, tries=0, digits="", step=0, collected=())
    if node.kind == "end":
        state = replace(state, completed=True)
    if node.kind == "transfer" and not _within_hours(node, now):
        return _enter(flow, state, node.fallback or flow.fallback, now)
    if node.kind == "callback" and node.steps:
        return _play(state, [node.prompt, node.steps[0].prompt])
    return _play(state, [node.prompt])


def _finish(state: CallState, *, hang_up: bool, status: FlowEnd | None = None) -> Result:
    final: FlowEnd = status or (Outcome.COMPLETED if state.completed else Outcome.PARTIAL)
    actions: list[Action] = [EndCall(final)]
    if hang_up:
        actions.append(Hangup())
    return replace(state, phase="ended", ended_status=final, token=state.token + 1), actions


def _within_hours(node: Node, now: datetime) -> bool:
    if not node.hours:
        return True
    local = now.astimezone(ZoneInfo(node.timezone))
    for weekday, start, end in node.hours:
        if local.weekday() == weekday and _hhmm(start) <= local.time() < _hhmm(end):
            return True
    return False


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _after_prompt(flow: Flow, state: CallState, now: datetime) -> Result:
    """The node's prompt has been said: what the node does next."""
    node = _node(flow, state)
    token = state.token + 1
    if node.kind == "say":
        return _enter(flow, state, node.next, now)
    if node.kind == "end":
        return _finish(state, hang_up=True)
    if node.kind == "open":
        new = replace(state, phase="record", token=token, recording_token=token)
        return new, [Record(node.id, node.max_seconds, node.silence_seconds, node.beep, token)]
    if node.kind == "transfer":
        return replace(state, phase="transfer", token=token), [
            Transfer(node.endpoint, node.ring_seconds, token)
        ]
    wait = node.inter_digit_timeout if state.digits else node.timeout
    return replace(state, phase="input", token=token), [StartTimer(wait, token)]


def _retry(
    flow: Flow, state: CallState, reason: Literal["no_input", "invalid"], now: datetime
) -> Result:
    node = _node(flow, state)
    tries = state.tries + 1
    if tries > node.retries:
        return _enter(flow, state, node.fallback or flow.fallback, now)
    state = replace(state, tries=tries, digits="")
    extra = node.no_input if reason == "no_input" else node.invalid
    return _play(state, [extra, _current_prompt(node, state)])


def _accept(
    flow: Flow, state: CallState, option: Option | None, value: str, digits: str, now: datetime
) -> Result:
    """A valid answer at the current node."""
    node = _node(flow, state)
    actions: list[Action] = []
    if node.kind == "callback":
        return _callback_step(flow, state, value, now)
    if node.kind == "language":
        state = replace(state, language=value)
        actions.append(SetLanguage(value))
    actions.append(SaveAnswer(node.id, node.kind, value, digits, state.language))
    state = replace(state, answers=state.answers + 1)
    target = option.next if option is not None and option.next else node.next
    new, more = _enter(flow, state, target, now)
    return new, actions + more


def _callback_step(flow: Flow, state: CallState, value: str, now: datetime) -> Result:
    node = _node(flow, state)
    step = node.steps[state.step]
    collected = (*state.collected, (step.field, value))
    if step.field == "consent" and value != "yes":
        save = SaveAnswer(node.id, "callback", "declined", "", state.language)
        state = replace(state, answers=state.answers + 1, collected=())
        new, more = _enter(flow, state, node.declined_next or node.next, now)
        return new, [save, *more]
    if state.step + 1 < len(node.steps):
        state = replace(state, step=state.step + 1, collected=collected, tries=0, digits="")
        return _play(state, [node.steps[state.step].prompt])
    actions: list[Action] = [
        SaveCallback(node.id, collected, node.consent_version, state.language),
        SaveAnswer(node.id, "callback", "requested", "", state.language),
    ]
    state = replace(state, answers=state.answers + 1, collected=())
    new, more = _enter(flow, state, node.next, now)
    return new, actions + more


def _evaluate_key(flow: Flow, state: CallState, key: str, now: datetime) -> Result:
    """A single-key answer (language, choice, scale, callback step)."""
    node = _node(flow, state)
    if node.kind == "scale":
        if key.isdigit() and node.min_value <= int(key) <= node.max_value:
            return _accept(flow, state, None, key, key, now)
        return _retry(flow, state, "invalid", now)
    for option in _current_options(node, state):
        if option.key == key:
            return _accept(flow, state, option, option.value, key, now)
    return _retry(flow, state, "invalid", now)


def _evaluate_number(flow: Flow, state: CallState, now: datetime) -> Result:
    node = _node(flow, state)
    digits = state.digits
    if not digits:
        return _retry(flow, state, "no_input", now)
    if node.min_value <= int(digits) <= node.max_value:
        return _accept(flow, state, None, str(int(digits)), digits, now)
    return _retry(flow, state, "invalid", now)


def _global_key(flow: Flow, state: CallState, key: str, now: datetime) -> Result | None:
    """Repeat, switch language, opt out; None when ``key`` is not a global key here."""
    node = _node(flow, state)
    keys = flow.keys
    stop: list[Action] = [StopPlayback()] if state.phase == "prompt" else []
    if key == keys.repeat:
        new, actions = _play(replace(state, digits=""), [_current_prompt(node, state)])
        return new, stop + actions
    if node.kind == "number" or (
        node.kind == "scale" and key.isdigit() and node.min_value <= int(key) <= node.max_value
    ):
        return None  # digits are answers here
    if keys.switch_language and key == keys.switch_language and len(flow.languages) > 1:
        index = flow.languages.index(state.language) if state.language in flow.languages else -1
        language = flow.languages[(index + 1) % len(flow.languages)]
        new, actions = _play(
            replace(state, language=language, digits=""), [_current_prompt(node, state)]
        )
        return new, [*stop, SetLanguage(language), *actions]
    if keys.opt_out and key == keys.opt_out:
        token = state.token + 1
        new = replace(state, phase="closing", token=token, ended_status=Outcome.OPTED_OUT)
        return new, [
            *stop,
            OptOut(node.id),
            Play((flow.opt_out_prompt,) if flow.opt_out_prompt else (), state.language, token),
        ]
    return None


# --------------------------------------------------------------------------- handlers
def _on_answered(flow: Flow, state: CallState, event: Event, now: datetime) -> Result:
    assert isinstance(event, Answered)
    if event.language and event.language in flow.languages:
        state = replace(state, language=event.language)
    return _enter(flow, state, flow.start, now)


def _on_prompt_done(flow: Flow, state: CallState, event: Event, now: datetime) -> Result:
    assert isinstance(event, PromptDone)
    if event.token != state.token:
        return state, []
    return _after_prompt(flow, state, now)


def _on_digit_while_prompting(flow: Flow, state: CallState, event: Event, now: datetime) -> Result:
    """Barge-in: a key during a prompt stops it and counts as input."""
    assert isinstance(event, Digit)
    handled = _global_key(flow, state, event.key, now)
    if handled is not None:
        return handled
    node = _node(flow, state)
    if node.kind not in INPUT_KINDS:
        return state, []  # say/open/end/transfer prompts: other keys are ignored
    if node.kind == "number" and event.key == "#" and not state.digits:
        return state, []  # a stray '#' (e.g. after a full-length number) is not an answer
    new, actions = _on_digit_input(flow, replace(state, phase="input"), event, now)
    return new, [StopPlayback(), *actions]


def _on_digit_input(flow: Flow, state: CallState, event: Event, now: datetime) -> Result:
    assert isinstance(event, Digit)
    node = _node(flow, state)
    if state.phase == "input":
        handled = _global_key(flow, state, event.key, now)
        if handled is not None:
            return handled
    if node.kind == "number":
        if event.key == "#":
            return _evaluate_number(flow, state, now)
        if not event.key.isdigit():
            return _retry(flow, state, "invalid", now)
        state = replace(state, digits=state.digits + event.key)
        if len(state.digits) >= node.max_digits:
            return _evaluate_number(flow, state, now)
        token = state.token + 1
        return replace(state, phase="input", token=token), [
            StartTimer(node.inter_digit_timeout, token)
        ]
    return _evaluate_key(flow, state, event.key, now)


def _on_timer(flow: Flow, state: CallState, event: Event, now: datetime) -> Result:
    assert isinstance(event, TimerFired)
    if event.token != state.token:
        return state, []
    node = _node(flow, state)
    if node.kind == "number" and state.digits:
        return _evaluate_number(flow, state, now)
    return _retry(flow, state, "no_input", now)


def _on_recording_done(flow: Flow, state: CallState, event: Event, now: datetime) -> Result:
    assert isinstance(event, RecordingDone)
    if event.token != state.recording_token or state.node_id is None:
        return state, []
    node = _node(flow, state)
    save = SaveAnswer(node.id, "open", event.path, "", state.language, event.seconds)
    state = replace(state, recording_token=0, answers=state.answers + 1)
    if state.phase == "ended":
        return state, [save]  # the caller hung up while speaking: keep the answer
    new, actions = _enter(flow, state, node.next, now)
    return new, [save, *actions]


def _on_transfer_done(flow: Flow, state: CallState, event: Event, now: datetime) -> Result:
    assert isinstance(event, TransferDone)
    if event.token != state.token:
        return state, []
    if event.connected:
        return _finish(replace(state, completed=True), hang_up=False, status=Outcome.TRANSFERRED)
    node = _node(flow, state)
    return _enter(flow, state, node.fallback or flow.fallback, now)


def _on_closing_prompt_done(flow: Flow, state: CallState, event: Event, now: datetime) -> Result:
    assert isinstance(event, PromptDone)
    if event.token != state.token:
        return state, []
    return _finish(state, hang_up=True, status=state.ended_status)


def _on_hangup(flow: Flow, state: CallState, event: Event, now: datetime) -> Result:
    if state.phase == "ended":
        return state, []
    return _finish(state, hang_up=False, status=state.ended_status)


def _ignore(flow: Flow, state: CallState, event: Event, now: datetime) -> Result:
    return state, []


LIVE_PHASES: tuple[Phase, ...] = ("prompt", "input", "record", "transfer", "closing")

TRANSITIONS: dict[tuple[Phase, type], Handler] = {
    ("start", Answered): _on_answered,
    ("start", HungUp): _on_hangup,
    ("prompt", PromptDone): _on_prompt_done,
    ("prompt", Digit): _on_digit_while_prompting,
    ("input", Digit): _on_digit_input,
    ("input", TimerFired): _on_timer,
    ("record", RecordingDone): _on_recording_done,
    ("ended", RecordingDone): _on_recording_done,
    ("transfer", TransferDone): _on_transfer_done,
    ("closing", PromptDone): _on_closing_prompt_done,
    **{(phase, HungUp): _on_hangup for phase in LIVE_PHASES},
}


def step(flow: Flow, state: CallState, event: Event, now: datetime) -> Result:
    """Advance one call by one event. Pure: the same inputs give the same outputs."""
    handler = TRANSITIONS.get((state.phase, type(event)), _ignore)
    return handler(flow, state, event, now)


def transition_rows() -> list[tuple[str, str, str]]:
    """(phase, event, handler) rows of the transition table, e.g. to draw the diagram."""
    return [
        (phase, event.__name__, handler.__name__.lstrip("_"))
        for (phase, event), handler in TRANSITIONS.items()
    ]

"""A simulated resident's script for a flow, timed from the real prompt lengths (9PP)."""

from __future__ import annotations

from pathlib import Path

from ivr.flows.model import Flow
from ivr.telephony import personas as P
from ivr.telephony.prompt_media import PromptMedia
from ivr.telephony.session import wav_seconds

BARGE_IN = 1.2  # seconds into an input prompt before keying (the prompt is interrupted)


def prompt_seconds(media: PromptMedia, flow: Flow, node_id: str, language: str) -> float:
    prompt = flow.nodes[node_id].prompt
    if prompt is None:
        return 0.0
    uri = media.render(flow, prompt, language)
    return wav_seconds(Path(uri.removeprefix("sound:") + ".wav"))


def plan_steps(
    media: PromptMedia, flow: Flow, plan: list[tuple[str, str]], language: str
) -> list[P.Step]:
    """Steps for ``plan``: (node id, what the resident does there).

    A ``say`` node is listened to (its keys would be ignored); an input node is answered by
    keying into its prompt; ``speak`` on an ``open`` node waits for the beep, says answer 01
    and ends the recording with ``#``; several keys on a callback node answer its steps.
    """
    steps: list[P.Step] = []
    for node_id, action in plan:
        node = flow.nodes[node_id]
        if node.kind == "say":
            steps.append(P.wait(round(prompt_seconds(media, flow, node_id, language) + 0.8, 1)))
        elif node.kind == "open":
            listen = prompt_seconds(media, flow, node_id, language) + 1.5
            steps += [P.wait(round(listen, 1)), P.say(1), P.wait(1), P.dtmf("#")]
        elif action == "hangup":
            steps += [P.wait(BARGE_IN), P.HANGUP]
        else:
            for key in action:
                steps += [P.wait(BARGE_IN), P.dtmf(key)]
        if node.kind == "language" and action in ("1", "2"):
            language = node.options[int(action) - 1].value
    return steps

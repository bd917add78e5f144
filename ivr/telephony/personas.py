"""Simulated residents: the dialled number selects a persona.

Outbound calls through the loopback trunk arrive back in the same Asterisk in the context
``simulated-residents``. A simulated resident's number is a Finnish mobile number
``+358 50 CCC NNNN`` (national ``050 CCC NNNN``): ``CCC`` is the persona code below and
``NNNN`` is a free serial, so a campaign can hold thousands of distinct numbers that all
behave the same way. The first digit of the code is the kind, the last two its parameter
``PP``:

====  =============================================================================
code  behaviour
====  =============================================================================
1PP   answers, stays silent, hangs up after PP seconds (00: stays until the caller
      hangs up, at most one hour)
2PP   rings and never answers; after PP seconds (00: 300 s) gives up with 480
3PP   rings PP seconds, then busy (SIP 486)
4PP   rings PP seconds, then declines (SIP 603 Decline)
5PP   unallocated number (SIP 404) at once
6PP   answers slowly: rings PP seconds, then answers and stays on the line silently
7PP   answers and runs keypad/speech script PP (see ``SCRIPTS``), then stays on the line
8PP   answers, waits one second, speaks the WAV ``sim-audio/PP.wav`` (see
      ``SPOKEN``), then stays on the line silently
9PP   answers and runs the script in the SIP header ``X-Sim-Script`` (set by the
      caller), then stays on the line; steps separated by ``/``: ``w2.5`` wait 2.5 s,
      ``d12#`` key 1, 2, #, ``s01`` speak sim-audio/01.wav, ``h`` hang up
====  =============================================================================

This module is pure: it only produces text (the dialplan and the documentation table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StepKind = Literal["wait", "dtmf", "say", "hangup"]


@dataclass(frozen=True)
class Step:
    kind: StepKind
    value: str = ""  # seconds for wait, digits for dtmf, sim-audio code for say


@dataclass(frozen=True)
class Script:
    code: int  # 0-99
    description: str
    steps: tuple[Step, ...]


def wait(seconds: float) -> Step:
    return Step("wait", f"{seconds:g}")


def dtmf(digits: str) -> Step:
    return Step("dtmf", digits)


def say(code: int) -> Step:
    return Step("say", f"{code:02d}")


HANGUP = Step("hangup")

# Spoken answers (code -> (language, text)); rendered with espeak-ng into sim-audio/PP.wav.
SPOKEN: dict[int, tuple[str, str]] = {
    1: (
        "en",
        "I would like better bus connections to the city centre and more "
        "activities for young people in the evenings.",
    ),
    2: ("fi", "Kunnan pitäisi kehittää joukkoliikennettä ja nuorten harrastuksia."),
    3: ("sv", "Kommunen borde satsa på kollektivtrafiken och på ungdomarnas fritid."),
}

SCRIPTS: dict[int, Script] = {
    s.code: s
    for s in (
        Script(
            1,
            "keys 1, 2, 3 a second apart",
            (wait(1.5), dtmf("1"), wait(1), dtmf("2"), wait(1), dtmf("3")),
        ),
        Script(
            2,
            "keys 4 then 2 then #, two seconds apart",
            (wait(2), dtmf("4"), wait(2), dtmf("2"), wait(2), dtmf("#")),
        ),
        Script(3, "keys 9 then hangs up after 3 s", (wait(1.5), dtmf("9"), wait(3), HANGUP)),
        Script(
            4,
            "keys 1, speaks answer 01, keys 2",
            (wait(1.5), dtmf("1"), wait(1), say(1), wait(1), dtmf("2")),
        ),
        Script(5, "listens 12 s, then keys 1 (a long call, for load tests)", (wait(12), dtmf("1"))),
    )
}


@dataclass(frozen=True)
class Persona:
    kind: int
    name: str
    description: str


PERSONAS: tuple[Persona, ...] = (
    Persona(1, "silent", "answers, stays silent, hangs up after PP s (00: caller hangs up)"),
    Persona(2, "no-answer", "rings and never answers; gives up after PP s (00: 300 s)"),
    Persona(3, "busy", "rings PP s, then busy (SIP 486)"),
    Persona(4, "declines", "rings PP s, then declines (SIP 603)"),
    Persona(5, "unallocated", "unallocated number (SIP 404) at once"),
    Persona(6, "slow-answer", "rings PP s, then answers and stays on the line"),
    Persona(7, "keys", "answers and runs script PP (keys and speech), then stays"),
    Persona(8, "speaks", "answers, speaks sim-audio/PP.wav, then stays on the line"),
    Persona(9, "scripted", "answers, runs the steps of SIP header X-Sim-Script, then stays"),
)

SCRIPT_HEADER = "X-Sim-Script"


def header_script(steps: list[Step]) -> str:
    """The X-Sim-Script header value for persona 9PP (the inverse of its dialplan)."""
    out = []
    for step in steps:
        prefix = {"wait": "w", "dtmf": "d", "say": "s", "hangup": "h"}[step.kind]
        if step.kind == "dtmf" and not all(c in "0123456789*#" for c in step.value):
            raise ValueError(f"not DTMF keys: {step.value!r}")
        out.append(prefix + step.value)
    return "/".join(out)


def script_variables(steps: list[Step]) -> dict[str, str]:
    """Originate variables that hand a script to a 9PP simulated resident."""
    return {f"PJSIP_HEADER(add,{SCRIPT_HEADER})": header_script(steps)}


def number_for(code: int, serial: int = 0) -> str:
    """The E.164 number of a simulated resident with persona ``code`` (100-999)."""
    if not 100 <= code <= 999:
        raise ValueError(f"persona code {code} is not between 100 and 999")
    if not 0 <= serial <= 9999:
        raise ValueError(f"serial {serial} is not between 0 and 9999")
    return f"+35850{code:03d}{serial:04d}"


def _script_lines(script: Script, sim_audio_dir: str) -> list[str]:
    lines: list[str] = []
    for step in script.steps:
        if step.kind == "wait":
            lines.append(f" same => n,Wait({step.value})")
        elif step.kind == "dtmf":
            lines.append(f" same => n,SendDTMF({step.value},250,120)")
        elif step.kind == "say":
            lines.append(f" same => n,Playback({sim_audio_dir}/{step.value})")
        else:
            lines.append(" same => n,Hangup(16)")
    return lines


def render_dialplan(sim_audio_dir: str) -> str:
    """The dialplan contexts of the simulated residents."""
    out = [
        "; Simulated residents (generated from ivr/telephony/personas.py).",
        "; National number 50 CCC NNNN: CCC selects the persona, NNNN is a free serial.",
        "[simulated-residents]",
        "exten => _+358X.,1,Goto(sim-route,${EXTEN:4},1)",
        "exten => _00358X.,1,Goto(sim-route,${EXTEN:5},1)",
        "exten => _0X.,1,Goto(sim-route,${EXTEN:1},1)",
        "exten => _[1-9]X.,1,Goto(sim-route,${EXTEN},1)",
        "",
        "[sim-route]",
        "exten => _50XXXXXXX,1,Set(PERSONA=${EXTEN:2:3})",
        " same => n,Set(PP=${EXTEN:3:2})",
        " same => n,GotoIf($[${DIALPLAN_EXISTS(sim-personas,${PERSONA},1)}]"
        "?sim-personas,${PERSONA},1)",
        " same => n,Goto(sim-personas,k${PERSONA:0:1},1)",
        "exten => _X.,1,Hangup(1)",
        "",
        "[sim-personas]",
        "; kind 1: answers, silent, hangs up after PP s (00: waits for the caller)",
        "exten => k1,1,Answer()",
        " same => n,Wait($[${PP} = 0 ? 3600 :: ${PP}])",
        " same => n,Hangup(16)",
        "; kind 2: rings, never answers",
        "exten => k2,1,Ringing()",
        " same => n,Wait($[${PP} = 0 ? 300 :: ${PP}])",
        " same => n,Hangup(19)",
        "; kind 3: busy after PP s",
        "exten => k3,1,Ringing()",
        " same => n,Wait(${PP})",
        " same => n,Busy()",
        "; kind 4: declines (603) after PP s",
        "exten => k4,1,Ringing()",
        " same => n,Wait(${PP})",
        " same => n,PJSIPHangup(603)",
        " same => n,Hangup(21)",
        "; kind 5: unallocated",
        "exten => k5,1,Hangup(1)",
        "; kind 6: slow answer",
        "exten => k6,1,Ringing()",
        " same => n,Wait(${PP})",
        " same => n,Answer()",
        " same => n,Wait(3600)",
        " same => n,Hangup(16)",
        "; kind 7: scripts",
        "exten => k7,1,Goto(sim-script-${PP},s,1)",
        "; kind 8: speaks a WAV",
        "exten => k8,1,Answer()",
        " same => n,Wait(1)",
        f" same => n,Playback({sim_audio_dir}/${{PP}})",
        " same => n,Wait(3600)",
        " same => n,Hangup(16)",
        "; kind 9: runs the script in the X-Sim-Script header",
        "exten => k9,1,Answer()",
        f" same => n,Set(SCRIPT=${{PJSIP_HEADER(read,{SCRIPT_HEADER})}})",
        " same => n,Set(N=${FIELDQTY(SCRIPT,/)})",
        " same => n,Set(I=1)",
        " same => n,While($[${I} <= ${N}])",
        " same => n,Set(STEP=${CUT(SCRIPT,/,${I})})",
        " same => n,Set(ARG=${STEP:1})",
        ' same => n,ExecIf($["${STEP:0:1}" = "w"]?Wait(${ARG}))',
        ' same => n,ExecIf($["${STEP:0:1}" = "d"]?SendDTMF(${ARG},250,120))',
        f' same => n,ExecIf($["${{STEP:0:1}}" = "s"]?Playback({sim_audio_dir}/${{ARG}}))',
        ' same => n,ExecIf($["${STEP:0:1}" = "h"]?Hangup(16))',
        " same => n,Set(I=$[${I} + 1])",
        " same => n,EndWhile()",
        " same => n,Wait(3600)",
        " same => n,Hangup(16)",
        "exten => i,1,Hangup(1)",
        "",
    ]
    for code, script in sorted(SCRIPTS.items()):
        out.append(f"[sim-script-{code:02d}]")
        out.append(f"; {script.description}")
        out.append("exten => s,1,Answer()")
        out.extend(_script_lines(script, sim_audio_dir))
        out.append(" same => n,Wait(3600)")
        out.append(" same => n,Hangup(16)")
        out.append("")
    return "\n".join(out) + "\n"


def markdown_table() -> str:
    """The persona table for the README and `ivr softphone --personas`."""
    rows = ["| code | persona | behaviour | example number |", "|---|---|---|---|"]
    for p in PERSONAS:
        example = number_for(p.kind * 100 + (5 if p.kind in (3, 4, 6) else 1))
        rows.append(f"| {p.kind}PP | {p.name} | {p.description} | `{example}` |")
    rows.append("")
    rows.append("| script (7PP) | what the resident does |")
    rows.append("|---|---|")
    for code, script in sorted(SCRIPTS.items()):
        rows.append(f"| {700 + code} | {script.description} |")
    return "\n".join(rows) + "\n"

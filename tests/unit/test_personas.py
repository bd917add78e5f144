from __future__ import annotations

import re

import pytest

from ivr.telephony import personas


def test_numbers_are_finnish_mobile_numbers_with_the_code() -> None:
    assert personas.number_for(701) == "+358507010000"
    assert personas.number_for(302, 42) == "+358503020042"
    with pytest.raises(ValueError):
        personas.number_for(99)
    with pytest.raises(ValueError):
        personas.number_for(100, 10000)


def test_dialplan_has_a_context_for_every_script_and_kind() -> None:
    text = personas.render_dialplan("/data/sim")
    for kind in range(1, 10):
        assert re.search(rf"^exten => k{kind},1,", text, re.M), kind
    for code in personas.SCRIPTS:
        assert f"[sim-script-{code:02d}]" in text
    assert "Playback(/data/sim/${PP})" in text
    assert "PJSIPHangup(603)" in text


def test_every_script_step_renders_to_an_application() -> None:
    text = personas.render_dialplan("/x")
    script = personas.SCRIPTS[2]
    block = text.split("[sim-script-02]")[1].split("\n\n")[0]
    digits = re.findall(r"SendDTMF\(([^,]+),", block)
    assert digits == [s.value for s in script.steps if s.kind == "dtmf"]


def test_markdown_table_lists_every_persona() -> None:
    table = personas.markdown_table()
    for p in personas.PERSONAS:
        assert f"| {p.kind}PP | {p.name} |" in table


def test_header_script_round_trip_text() -> None:
    steps = [personas.wait(2.5), personas.dtmf("12#"), personas.say(1), personas.HANGUP]
    assert personas.header_script(steps) == "w2.5/d12#/s01/h"
    assert personas.script_variables(steps) == {"PJSIP_HEADER(add,X-Sim-Script)": "w2.5/d12#/s01/h"}
    with pytest.raises(ValueError):
        personas.header_script([personas.dtmf("1/2")])

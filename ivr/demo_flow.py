"""The demo's survey and its simulated residents (pure but for writing the flow's files).

The survey is the example strategy survey (``examples/flows/strategy-survey.yaml``) with
English added, so that the demo's English-speaking residents take it in English and their
open answers can be transcribed by the small English test model. The residents are the
personas of :mod:`ivr.telephony.personas` (busy, no answer, declining) and residents who
take the survey: their scripts are timed from the real prompt lengths
(:func:`survey_steps`) and installed as persona codes of their own in the running PBX
(see :mod:`ivr.demo`), because a campaign's calls carry no per-call script header.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ivr.config import EXAMPLE_FLOWS
from ivr.telephony import personas as P

EXAMPLE_SURVEY = EXAMPLE_FLOWS / "strategy-survey.yaml"
FLOW_ID = "strategy-survey-demo"

# English for every text of the example survey, by where it is in the file.
ENGLISH: dict[str, str] = {
    "opt_out_prompt": "All right. Your number has been added to the do-not-call list, and "
    "the city will not call you with surveys again. Have a nice day!",
    "defaults.no_input": "I did not hear your choice.",
    "defaults.invalid": "That number is not one of the options.",
    "nodes.intro.prompt": "Hello! This is the city manager of Uusikaupunki. We are preparing "
    "a new strategy for the city and want to hear your views. Answering takes about five "
    "minutes.",
    "nodes.lang.prompt": "Suomeksi, paina 1. På svenska, tryck 2. In English, press 3.",
    "nodes.how-to.prompt": "Your answers are handled anonymously. Press star to hear a "
    "question again, and nine to change the language. If you do not want to be called "
    "again, press zero.",
    "nodes.services.prompt": "How satisfied are you with the city's services overall? Give "
    "a grade from one to five: one means very dissatisfied and five very satisfied.",
    "nodes.develop-area.prompt": "What is the most important thing for the city to develop? "
    "Business and jobs, press 1. Schools and early education, press 2. Transport "
    "connections, press 3. Culture, sports and leisure, press 4. Environment and nature, "
    "press 5.",
    "nodes.recommend.prompt": "Would you recommend Uusikaupunki as a place to live? Yes, "
    "press 1. No, press 2.",
    "nodes.age-group.prompt": "Which age group do you belong to? 18 to 29, press 1. 30 to "
    "49, press 2. 50 to 64, press 3. 65 or older, press 4.",
    "nodes.develop-open.prompt": "What do you think the city should develop? Tell us in your "
    "own words after the tone. You have about a minute.",
    "nodes.contact.prompt": "We can also contact you if you would like to discuss this further.",
    "nodes.contact.steps.0.prompt": "To contact you, we store your phone number and your "
    "choices. If you give us permission to contact you, press 1. If not, press 2.",
    "nodes.contact.steps.1.prompt": "How would you like to be contacted? By phone, press 1. "
    "By email, press 2. By a home visit, press 3.",
    "nodes.contact.steps.2.prompt": "What time suits you best? In the morning, press 1. In "
    "the afternoon, press 2. In the early evening, press 3.",
    "nodes.contact.steps.3.prompt": "Do you need an interpreter? No, press 1. Arabic, press "
    "2. Russian, press 3. Somali, press 4. English, press 5. Another language, press 6.",
    "nodes.thanks.prompt": "Thank you for your answers! They help us make Uusikaupunki an "
    "even better place to live. Have a nice day!",
}
# English labels of the options, by their value.
ENGLISH_LABELS: dict[str, str] = {
    "fi": "Finnish",
    "sv": "Swedish",
    "en": "English",
    "economy": "Business and jobs",
    "education": "Schools and early education",
    "transport": "Transport connections",
    "leisure": "Culture, sports and leisure",
    "environment": "Environment and nature",
    "yes": "Yes",
    "no": "No",
    "18-29": "18–29",
    "30-49": "30–49",
    "50-64": "50–64",
    "65+": "65+",
    "phone": "Phone",
    "email": "Email",
    "home_visit": "Home visit",
    "morning": "Morning",
    "afternoon": "Afternoon",
    "evening": "Early evening",
    "none": "No interpreter",
    "ar": "Arabic",
    "ru": "Russian",
    "so": "Somali",
    "other": "Another language",
}


def _text_maps(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any], Any]]:
    """Every ``{fi: ..., sv: ...}`` text of the flow document: (path, the map, its parent)."""
    if isinstance(node, dict):
        if isinstance(node.get("fi"), str):
            yield path, node, None
            return
        for key, value in node.items():
            yield from _text_maps(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _text_maps(value, f"{path}.{index}")


def survey_document() -> dict[str, Any]:
    """The example survey as a YAML document, with English added (texts, labels, and key 3
    of the language menu)."""
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE_SURVEY.read_text(encoding="utf-8"))
    doc["id"] = FLOW_ID
    doc["name"] = f"{doc['name']} / City strategy survey (demo)"
    doc["languages"] = [*doc["languages"], "en"]
    lang = doc["nodes"]["lang"]
    lang["options"].append(
        {"key": "3", "value": "en", "label": {"fi": "englanti", "sv": "engelska"}}
    )
    for language in ("fi", "sv"):
        lang["prompt"][language] = ENGLISH["nodes.lang.prompt"]
    for path, text, _ in _text_maps(doc):
        if path.endswith(".label"):
            value = _lookup(doc, path.removesuffix(".label"))["value"]
            text["en"] = ENGLISH_LABELS[str(value)]
        else:
            text["en"] = ENGLISH[path]
    return doc


def _lookup(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def write_survey(folder: Path) -> Path:
    """Write the demo's survey (and the recordings it plays) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    recordings = EXAMPLE_SURVEY.parent / "recordings"
    shutil.copytree(recordings, folder / "recordings", dirs_exist_ok=True)
    path = folder / "strategy-survey-demo.yaml"
    header = (
        "# Written by `ivr demo`: examples/flows/strategy-survey.yaml with English added\n"
        "# for the demo's English-speaking residents.\n"
    )
    body = yaml.safe_dump(survey_document(), allow_unicode=True, sort_keys=False, width=90)
    path.write_text(header + body, encoding="utf-8")
    return path


# ------------------------------------------------------------------ residents
# What a resident who takes the survey does at each node: keys, "speak" (an open answer,
# ended with #), "hangup", or "" (listens).
Plan = tuple[tuple[str, str], ...]

_ANSWERS: Plan = (
    ("intro", ""),
    ("how-to", ""),
    ("services", "4"),
    ("develop-area", "3"),
    ("recommend", "1"),
    ("age-group", "2"),
    ("develop-open", "speak"),
)
CALLBACK_YES: Plan = (("contact", "1121"),)  # consent, by phone, afternoon, no interpreter
CALLBACK_NO: Plan = (("contact", "2"),)


def survey_plan(language_key: str, callback: Plan) -> Plan:
    """The whole survey, choosing the language with ``language_key``."""
    return (_ANSWERS[0], ("lang", language_key), *_ANSWERS[1:], *callback)


HANG_UP_MIDWAY: Plan = (
    ("intro", ""),
    ("lang", "1"),
    ("how-to", ""),
    ("services", "2"),
    ("develop-area", "hangup"),
)


@dataclass(frozen=True)
class Resident:
    """A group of simulated residents who behave alike."""

    code: int  # the persona code of their numbers (number_for(code, serial))
    count: int
    language: str  # the contact's language in the imported list
    what: str
    outcome: str  # the attempt's outcome the demo expects
    plan: Plan = ()  # a survey plan: the demo installs the script for ``code``
    speaks: int = 0  # the sim answer (personas.SPOKEN) spoken into the open question


RESIDENTS: tuple[Resident, ...] = (
    Resident(951, 8, "fi", "answers in Finnish, asks to be called back", "completed",
             survey_plan("1", CALLBACK_YES), 2),
    Resident(952, 4, "fi", "answers in Finnish, no callback", "completed",
             survey_plan("1", CALLBACK_NO), 2),
    Resident(953, 6, "sv", "answers in Swedish", "completed", survey_plan("2", CALLBACK_NO), 3),
    Resident(954, 6, "en", "answers in English", "completed", survey_plan("3", CALLBACK_YES), 1),
    Resident(955, 6, "fi", "hangs up midway", "partial", HANG_UP_MIDWAY),
    Resident(302, 7, "fi", "busy", "busy"),
    Resident(205, 7, "sv", "does not answer", "no_answer"),
    Resident(402, 6, "fi", "declines the call", "declined"),
)  # fmt: skip


def contacts() -> list[tuple[str, Resident]]:
    """Every demo contact: (phone number, its resident group)."""
    out: list[tuple[str, Resident]] = []
    serial = 0
    for resident in RESIDENTS:
        for _ in range(resident.count):
            serial += 1
            out.append((P.number_for(resident.code, serial), resident))
    return out


AGE_GROUPS = ("18-29", "30-49", "50-64", "65+")


def write_contacts(path: Path) -> int:
    """The contact list as a municipality would export it (semicolons, Finnish headers)."""
    rows = ["puhelin;kieli;ikäryhmä;alue"]
    for index, (phone, resident) in enumerate(contacts()):
        rows.append(f"{phone};{resident.language};{AGE_GROUPS[index % 4]};Keskusta")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows) - 1


def expected_outcomes() -> dict[str, int]:
    out: dict[str, int] = {}
    for resident in RESIDENTS:
        out[resident.outcome] = out.get(resident.outcome, 0) + resident.count
    return out


def expected_transcripts() -> int:
    """English open answers (the demo's test model is English-only)."""
    return sum(r.count for r in RESIDENTS if r.language == "en" and r.speaks)


# ------------------------------------------------------------------ scripts
SAY_MARGIN = 1.2  # seconds after a say prompt's end before the next step
KEY_INTO_PROMPT = 1.5  # seconds into an input prompt before keying (barge-in)


def survey_steps(
    plan: Plan, seconds: Callable[[str, str], float], language: str, speaks: int
) -> list[P.Step]:
    """The resident's steps for ``plan``; ``seconds(node_id, language)`` is the length of
    a node's prompt. Keys barge into input prompts; say prompts are listened to the end
    (keys there are ignored), with a margin for a busy machine."""
    steps: list[P.Step] = []
    for node_id, action in plan:
        if action == "":
            steps.append(P.wait(round(seconds(node_id, language) + SAY_MARGIN, 1)))
        elif action == "speak":
            listen = seconds(node_id, language) + SAY_MARGIN
            steps += [P.wait(round(listen, 1)), P.say(speaks), P.wait(1), P.dtmf("#")]
        elif action == "hangup":
            steps += [P.wait(KEY_INTO_PROMPT), P.HANGUP]
        else:
            for key in action:
                steps += [P.wait(KEY_INTO_PROMPT), P.dtmf(key)]
        if node_id == "lang":
            language = {"1": "fi", "2": "sv", "3": "en"}.get(action, language)
    return steps


def dialplan_steps(steps: list[P.Step], sim_audio_dir: str) -> list[tuple[str, str]]:
    """(application, data) of each priority of a resident's extension: answer, the steps,
    then stay on the line (the caller hangs up)."""
    out = [("Answer", "")]
    for step in steps:
        if step.kind == "wait":
            out.append(("Wait", step.value))
        elif step.kind == "dtmf":
            out.append(("SendDTMF", f"{step.value},250,120"))
        elif step.kind == "say":
            out.append(("Playback", f"{sim_audio_dir}/{step.value}"))
        else:
            out.append(("Hangup", "16"))
    return [*out, ("Wait", "600"), ("Hangup", "16")]

"""`ivr flow validate` and `ivr flow prompts` as a user runs them (no `ivr init` needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "flows"


def ivr(
    data_dir: Path, *args: str, cache_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_DATA_DIR"] = str(data_dir)
    if cache_dir is not None:
        env["IVR_CACHE_DIR"] = str(cache_dir)
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "never-initialised"


@pytest.mark.parametrize(
    ("name", "nodes"),
    [("strategy-survey.yaml", 10), ("survey-call-in.yaml", 9), ("housing-line.yaml", 12)],
)
def test_validate_accepts_the_examples_without_init(name: str, nodes: int, data_dir: Path) -> None:
    path = str(EXAMPLES / name)
    result = ivr(data_dir, "flow", "validate", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"{path}: valid: {nodes} nodes, languages fi, sv"]
    assert not data_dir.exists()  # validation touches no data directory


BROKEN = """\
id: broken
name: Rikki
version: "1"
languages: [fi, sv]
start: ask
nodes:
  ask:
    kind: choice
    prompt: {fi: Valitse, sv: Välj}
    options:
      - {key: "1", value: a, next: done}
      - {key: "x", value: b, next: nowhere}
    next: done
  done:
    kind: end
    prompt: {fi: Hei}
"""


def test_validate_prints_each_problem_as_file_line_path_message(
    tmp_path: Path, data_dir: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN, encoding="utf-8")
    result = ivr(data_dir, "flow", "validate", str(broken))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{broken}:12: nodes.ask.options.1.key: an option key is one digit 0-9, got 'x'",
        f"{broken}:12: nodes.ask.options.1.next: no node 'nowhere'",
        f"{broken}:16: nodes.done.prompt: no text or recording for sv "
        "(the flow's languages are fi, sv)",
    ]
    assert "Traceback" not in result.stderr


def test_validate_reports_a_missing_file_and_a_hostile_one(tmp_path: Path, data_dir: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = ivr(data_dir, "flow", "validate", str(missing))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{missing}: no such file"]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text('a: &a ["lol"]\nb: [*a, *a]\n', encoding="utf-8")
    result = ivr(data_dir, "flow", "validate", str(bomb))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{bomb}:1: YAML anchors (&a) are not allowed")
    assert "Traceback" not in result.stderr


def test_prompts_lists_recorded_and_synthetic(data_dir: Path) -> None:
    path = str(EXAMPLES / "strategy-survey.yaml")
    result = ivr(data_dir, "flow", "prompts", path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "nodes.intro.prompt fi recorded: recordings/intro-fi.wav"
    assert lines[1].startswith("nodes.intro.prompt sv synthetic: Hej! Det här är")
    assert "nodes.contact.steps.3.prompt sv synthetic: Behöver du tolk? Ingen tolk, tryck 1." in (
        "\n".join(lines)
    )
    assert lines[-1] == f"{path}: 34 prompts: 1 recorded, 33 synthetic"
    assert not data_dir.exists()


def test_prompts_render_fills_the_prompt_cache_once(tmp_path: Path, data_dir: Path) -> None:
    folder = tmp_path / "flows"
    (folder / "recordings").mkdir(parents=True)
    shutil.copy(EXAMPLES / "recordings" / "intro-fi.wav", folder / "recordings" / "intro-fi.wav")
    small = folder / "small.yaml"
    small.write_text(
        """\
id: small
name: Pieni
version: "1"
languages: [fi, sv]
start: intro
nodes:
  intro:
    kind: say
    prompt: {fi: Hei, sv: Hej, recording: {fi: recordings/intro-fi.wav}}
    next: bye
  bye: {kind: end, prompt: {fi: Kiitos, sv: Tack}}
""",
        encoding="utf-8",
    )
    cache_dir = tmp_path / "cache"
    first = ivr(data_dir, "flow", "prompts", "--render", str(small), cache_dir=cache_dir)
    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    cache = cache_dir / "prompts"  # the cache the telephony worker plays from
    assert lines[0] == f"prompt cache: {cache}"
    rendered = [Path(line.split(" -> ")[1]) for line in lines[1:-1]]
    assert len(rendered) == 4 and all(p.parent == cache and p.is_file() for p in rendered)
    assert lines[1].startswith("nodes.intro.prompt fi recorded: recordings/intro-fi.wav -> ")
    assert sorted(cache.iterdir()) == sorted(rendered)
    mtimes = {p: p.stat().st_mtime_ns for p in rendered}
    again = ivr(data_dir, "flow", "prompts", "--render", str(small), cache_dir=cache_dir)
    assert again.stdout == first.stdout
    assert {p: p.stat().st_mtime_ns for p in rendered} == mtimes
    # a recording that goes missing is named, with the prompt's path
    (folder / "recordings" / "intro-fi.wav").unlink()
    gone = ivr(data_dir, "flow", "prompts", "--render", str(small), cache_dir=cache_dir)
    assert gone.returncode == 1
    assert f"{small}: nodes.intro.prompt: the fi recording recordings/intro-fi.wav is missing" in (
        gone.stdout
    )

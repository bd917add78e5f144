"""Render every prompt of a flow as the caller will hear it, in a child process with a time
limit.

The rendering is the project's prompt pipeline (:class:`ivr.speech.prompts.PromptStore`,
what ``ivr flow prompts --render`` uses): uploaded recordings as uploaded, the rest spoken
by TTS and converted, every file content-addressed in ``settings.prompt_cache_dir``. It runs
in a child process of its own session, so that a TTS engine that hangs is killed with
everything it started when the time is up, and the web request answers with an error
instead of waiting forever.

``python -m ivr.flows.preview`` is the child: a JSON job on stdin, a JSON list on stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.config import PromptSettings, Settings


class PreviewError(Exception):
    """The preview could not be rendered (timed out, or the renderer failed)."""


@dataclass(frozen=True)
class Rendered:
    """One prompt in one language: the cache key of its audio, or why it has none."""

    path: str  # where the prompt is in the YAML, e.g. nodes.q1.prompt
    language: str
    key: str = ""  # the file <prompt_cache_dir>/<key>.wav
    source: str = ""  # recorded | synthetic
    engine: str = ""
    voice: str = ""
    fallback: str = ""
    error: str = ""


def job(settings: Settings, yaml_text: str) -> dict[str, Any]:
    """What the child needs to render ``yaml_text`` as ``settings`` say."""
    from ivr.speech import prompt_audio
    from ivr.speech.prompts import voices_dir

    return {
        "yaml": yaml_text,
        "cache_dir": str(settings.prompt_cache_dir),
        "uploads_dir": str(prompt_audio.uploads_dir(settings.data_dir)),
        "voices_dir": str(voices_dir(settings)),
        "prompts": dataclasses.asdict(settings.prompts),
    }


def render(settings: Settings, yaml_text: str, timeout: float) -> list[Rendered]:
    """Every prompt of the (valid) flow ``yaml_text`` in every language of the flow.

    PreviewError when it takes longer than ``timeout`` seconds (the child and whatever it
    started are killed) or the child fails.
    """
    payload = json.dumps(job(settings, yaml_text)).encode()
    with subprocess.Popen(
        [sys.executable, "-m", "ivr.flows.preview"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: killed as a whole
    ) as child:
        try:
            out, err = child.communicate(payload, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            raise PreviewError(
                f"rendering the prompts took longer than {timeout:g} seconds and was stopped"
            ) from None
        finally:
            if child.poll() is None:  # an exception of our own while it still runs
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
    if child.returncode != 0:
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise PreviewError(f"the prompt renderer failed: {last[0]}")
    try:
        rows = json.loads(out)
        return [Rendered(**row) for row in rows]
    except (ValueError, TypeError) as exc:
        raise PreviewError(f"the prompt renderer answered nonsense: {exc}") from None


def _child(spec: dict[str, Any]) -> list[dict[str, str]]:
    from ivr.flows.library_yaml import prompt_places
    from ivr.flows.loader import parse_flow
    from ivr.speech.prompts import PromptError, PromptStore

    settings = dict(spec["prompts"])
    settings["piper_voices"] = dict(settings.get("piper_voices") or {})
    store = PromptStore(
        Path(spec["cache_dir"]),
        PromptSettings(**settings),
        voices_dir=Path(spec["voices_dir"]),
        uploads_dir=Path(spec["uploads_dir"]),
    )
    flow = parse_flow(spec["yaml"], "<flow>")
    rows: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as nowhere:  # a stored flow has no recordings folder
        for path, prompt in prompt_places(flow, spec["yaml"]):
            for language in flow.languages:
                row = Rendered(path, language)
                try:
                    audio = store.resolve(flow, prompt, language, Path(nowhere), where=path)
                except PromptError as exc:
                    row = dataclasses.replace(row, error=str(exc))
                else:
                    row = dataclasses.replace(
                        row,
                        key=audio.key,
                        source=audio.source,
                        engine=audio.engine,
                        voice=audio.voice,
                        fallback=audio.fallback,
                    )
                rows.append(dataclasses.asdict(row))
    return rows


def main() -> int:
    spec = json.loads(sys.stdin.buffer.read())
    json.dump(_child(spec), sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

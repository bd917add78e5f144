"""`ivr flow prompts --render` fills the very cache the telephony worker plays from, and two
data directories share it without changing each other's prompts (it is content-addressed).

Real espeak-ng and ffmpeg; the worker's parts are built as `ivr telephony` builds them
(``App.telephony()``), without starting Asterisk (rendering needs none)."""

from __future__ import annotations

from pathlib import Path

from ivr.bootstrap import App, init
from ivr.config import load_settings
from ivr.flows.loader import load_flow
from ivr.flows.walk import iter_prompts
from tests.support.cli import run_ivr
from tests.support.instance import instance_env

FLOW = """\
id: cached
name: Välimuisti
version: "1"
languages: [fi, sv]
start: hello
nodes:
  hello:
    kind: say
    prompt: {fi: Hei ja tervetuloa, sv: Hej och välkommen}
    next: bye
  bye: {kind: end, prompt: {fi: Kiitos soitosta, sv: Tack för samtalet}}
"""


def _data_dir(root: Path, name: str, flow: Path, cache: Path) -> tuple[App, dict[str, str]]:
    """An initialised data directory answering line 100 with ``flow``; cache ``cache``."""
    data_dir = root / name
    data_dir.mkdir()
    (data_dir / "ivr.toml").write_text(f'[lines]\n"100" = {{ flow = "{flow}" }}\n')
    env = {**instance_env(data_dir), "IVR_CACHE_DIR": str(cache)}
    app, _ = init(load_settings(environ=env))
    return app, env


def _worker_media(app: App, flow_file: Path) -> set[Path]:
    """The files the telephony worker would play for every prompt of the flow."""
    parts = app.telephony()
    try:
        flow = load_flow(flow_file)
        media = {parts.prompts.render(flow, p, lang) for _, lang, p in iter_prompts(flow)}
    finally:
        parts.store.close()
        parts.engine.dispose()
    assert all(m.startswith("sound:") for m in media)
    return {Path(m.removeprefix("sound:") + ".wav") for m in media}


def _snapshot(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_render_fills_the_workers_cache_and_data_dirs_share_it(tmp_path: Path) -> None:
    flow_file = tmp_path / "cached.yaml"
    flow_file.write_text(FLOW, encoding="utf-8")
    cache = tmp_path / "cache"
    one, one_env = _data_dir(tmp_path, "one", flow_file, cache)
    two, two_env = _data_dir(tmp_path, "two", flow_file, cache)

    rendered = run_ivr(one_env, "flow", "prompts", "--render", str(flow_file))
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    lines = rendered.stdout.splitlines()
    assert lines[0] == f"prompt cache: {cache / 'prompts'}"
    files = {Path(line.split(" -> ")[1]) for line in lines[1:-1]}
    assert len(files) == 4 and all(f.parent == cache / "prompts" and f.is_file() for f in files)
    before = _snapshot(cache / "prompts")
    assert set(before) == files
    assert not (one.settings.data_dir / "prompts" / "cached").exists()

    # The worker of the same data directory plays those very files: none is rendered again
    # (it adds only its own apology prompts).
    assert _worker_media(one, flow_file) == files
    after_worker = _snapshot(cache / "prompts")
    assert {f: after_worker[f] for f in files} == before
    # Another data directory's worker finds the same content under the same names, and
    # neither rewrites nor adds a file: the two do not interfere.
    assert _worker_media(two, flow_file) == files
    assert _snapshot(cache / "prompts") == after_worker
    again = run_ivr(two_env, "flow", "prompts", "--render", str(flow_file))
    assert again.stdout == rendered.stdout
    assert _snapshot(cache / "prompts") == after_worker

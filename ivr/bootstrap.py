"""The composition root: the one place that builds adapters and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivr.clock import Clock, system_clock
from ivr.config import Settings, dump_toml, load_settings, toml_value
from ivr.credentials import Credentials, ensure_credentials, load_credentials
from ivr.pbx.process import PbxController
from ivr.telephony.ami import AmiClient
from ivr.telephony.ari import AriClient, ari_client

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from ivr.campaigns.admin import CampaignAdmin
    from ivr.campaigns.dialer import Dialer
    from ivr.cluster.heartbeat import Heartbeat
    from ivr.flows.model import Flow
    from ivr.services import Services
    from ivr.store.call_store import DbCallStore
    from ivr.telephony.line_directory import LineDirectory
    from ivr.telephony.prompt_media import PromptMedia
    from ivr.telephony.service import TelephonyService


@dataclass(frozen=True)
class App:
    settings: Settings
    credentials: Credentials
    # The one clock of this process: every part that decides by time reads it.
    clock: Clock = field(default=system_clock, compare=False)

    def pbx(self) -> PbxController:
        return PbxController(self.settings, self.credentials)

    def ari(self) -> AriClient:
        return ari_client(self.settings, self.credentials)

    def telephony(self, node_name: str | None = None) -> TelephonyParts:
        """The telephony service with its database, prompts and lines, ready to ``start()``."""
        import socket

        from ivr.flows.loader import load_flow
        from ivr.speech.prompts import PromptStore
        from ivr.store.call_store import DbCallStore
        from ivr.store.db import make_engine, make_session_factory
        from ivr.store.migrate import check_current
        from ivr.telephony.line_directory import LineDirectory
        from ivr.telephony.prompt_media import PromptMedia
        from ivr.telephony.service import Line, TelephonyService

        settings = self.settings
        check_current(settings.database_url)
        engine = make_engine(settings.database_url, echo=settings.database.echo)
        node = (
            node_name
            or settings.telephony.node_name
            or f"{socket.gethostname()}:{settings.pbx.sip_port}"
        )
        from ivr.jobs import make_queue

        jobs = make_queue(settings)
        store = DbCallStore(
            make_session_factory(engine), node, jobs.enqueue_transcription, clock=self.clock
        )
        prompts = PromptMedia(PromptStore.from_settings(settings))
        flows: dict[str, Flow] = {}
        lines: dict[str, Line] = {}
        for spec in settings.lines:
            flow = load_flow(spec.flow)
            flows.setdefault(flow.id, flow)
            lines[spec.number] = Line(spec.number, flows[flow.id], spec.language or None)
        for flow in flows.values():
            prompts.prerender(flow)
        prompts.prerender_apologies()
        from ivr.telephony.ari import SERVICE_EVENTS

        ari = self.ari()
        ari.event_filter = SERVICE_EVENTS
        service = TelephonyService(
            ari,
            store,
            prompts,
            lines,
            self.pbx().recordings_dir,
            max_call_seconds=settings.telephony.max_call_seconds,
            clock=self.clock,
        )
        from ivr.campaigns.dialer import Dialer

        dialer = Dialer(
            service,
            store.factory,
            node,
            clock=self.clock,
            prerender=prompts.prerender,
            writer=store.writer,
            node_timeout_seconds=settings.cluster.node_timeout_seconds,
        )
        # The lines of the database beside the config file's, kept current while it runs.
        directory = LineDirectory(
            service, store.factory, prompts.prerender, lines, settings.data_dir
        )
        from ivr.cluster.heartbeat import Heartbeat

        heartbeat = Heartbeat(  # this node's row in cluster_nodes (ivr cluster status)
            node,
            service,
            dialer,
            store.writer.run,
            clock=self.clock,
            interval=settings.cluster.heartbeat_seconds,
        )
        return TelephonyParts(
            service, store, prompts, flows, engine, dialer, directory, heartbeat=heartbeat
        )

    def campaigns(self) -> CampaignAdmin:
        from ivr.campaigns.admin import CampaignAdmin
        from ivr.store.db import make_engine, make_session_factory
        from ivr.store.migrate import check_current

        check_current(self.settings.database_url)
        engine = make_engine(self.settings.database_url)
        return CampaignAdmin(make_session_factory(engine), self.clock)

    def services(self) -> Services:
        """The staff-side services (web UI and CLI) over one engine."""
        from ivr.accounts.service import Accounts
        from ivr.callbacks.service import CallbackService
        from ivr.campaigns.admin import CampaignAdmin
        from ivr.exports.service import Exports
        from ivr.flows.library import FlowLibrary
        from ivr.reports.service import Reports
        from ivr.review.service import ReviewService
        from ivr.schedules.service import Schedules
        from ivr.services import Services
        from ivr.store.db import make_engine, make_session_factory
        from ivr.store.migrate import check_current
        from ivr.telephony.line_admin import LineAdmin
        from ivr.webhooks.service import Webhooks

        check_current(self.settings.database_url)
        engine = make_engine(self.settings.database_url, echo=self.settings.database.echo)
        factory = make_session_factory(engine)
        flows = FlowLibrary(factory, self.clock, self.settings)
        return Services(
            settings=self.settings,
            credentials=self.credentials,
            clock=self.clock,
            engine=engine,
            factory=factory,
            accounts=Accounts(factory, self.clock, self.settings.web),
            campaigns=CampaignAdmin(factory, self.clock),
            flows=flows,
            lines=LineAdmin(factory, self.clock, self.settings, check=flows.check),
            reports=Reports(factory, self.clock),
            review=ReviewService(
                factory,
                self.clock,
                self.credentials.web_secret_key,
                self.settings.web.audio_link_seconds,
            ),
            exports=Exports(factory, self.clock),
            callbacks=CallbackService(
                factory, self.clock, self.settings.web.callback_overdue_hours
            ),
            schedules=Schedules(factory, self.clock, self.settings.smtp),
            webhooks=Webhooks(factory, self.clock, self.settings.webhooks),
        )

    async def ami(self) -> AmiClient:
        pbx = self.settings.pbx
        return await AmiClient.connect(
            pbx.bind_address,
            pbx.ami_port,
            self.credentials.ami_username,
            self.credentials.ami_password,
        )


@dataclass
class TelephonyParts:
    service: TelephonyService
    store: DbCallStore
    prompts: PromptMedia
    flows: dict[str, Flow]
    engine: Engine
    dialer: Dialer
    directory: LineDirectory | None = None  # the database's inbound lines, kept current
    heartbeat: Heartbeat | None = None  # this node's heartbeat into cluster_nodes

    async def start(self, *, dial: bool = True) -> None:
        """Load the inbound lines (and keep them current), start the service (and
        reconcile), then the campaign dialer."""
        if self.directory is not None:
            await self.directory.start()
        await self.service.start()
        if self.heartbeat is not None:  # first beat now: a draining node learns it first
            await self.heartbeat.start()
        if dial:
            await self.dialer.start()

    async def drain(
        self,
        seconds: float,
        hurry: asyncio.Event | None = None,
        say: Callable[[str], None] | None = None,
    ) -> int:
        """A graceful shutdown: stop dialling at once, refuse new inbound calls
        (congestion), let the live calls go on for up to ``seconds`` (until ``hurry`` is
        set: a second signal), then hang up the rest as ``interrupted`` so their attempts
        are retried. Returns how many calls were ended as interrupted.

        Whatever is not recorded within a short grace after the hang-ups (a busy database)
        stays for the next start's reconcile, which marks those calls interrupted and
        settles their attempts: nothing is lost."""
        say = say or logging.getLogger(__name__).warning
        loop = asyncio.get_running_loop()
        self.service.refuse_new_calls = True
        await self.dialer.stop_dialling()
        live = self.service.live_calls()
        say(
            f"shutting down: dialling stopped, new inbound calls refused (congestion); "
            f"draining {live} live call{'s' if live != 1 else ''} for up to {seconds:g} s"
        )
        idle = await self.service.wait_idle(seconds, hurry)
        ended = [] if idle else await self.service.end_live_calls()
        grace_end = loop.time() + (2.0 if hurry is not None and hurry.is_set() else 10.0)
        await self.service.wait_idle(max(0.0, grace_end - loop.time()))
        unsettled = await self.dialer.wait_settled(max(0.0, grace_end - loop.time()))
        if ended:
            with contextlib.suppress(Exception):  # only the wording of the reason
                await self.store.writer.run(lambda s: _shutdown_reason(s, ended, seconds))
        left = self.service.live_calls() + unsettled
        say(
            f"ended {len(ended)} call{'s' if len(ended) != 1 else ''} as interrupted"
            + (f"; {left} left for the next start's reconcile" if left else "")
        )
        return len(ended)

    async def close(self) -> None:
        if self.heartbeat is not None:  # a clean shutdown: the node reads "stopped"
            await self.heartbeat.stop()
        if self.directory is not None:
            await self.directory.stop()
        await self.dialer.stop()
        await self.service.stop()
        self.store.close()
        self.engine.dispose()


def _shutdown_reason(s: Session, call_ids: list[str], seconds: float) -> None:
    """Say why the calls ended at a shutdown were cut (their sessions say "interrupted")."""
    import sqlalchemy as sa

    from ivr.outcome import Outcome
    from ivr.store.models import Call

    s.execute(
        sa.update(Call)
        .where(Call.id.in_(call_ids), Call.status == Outcome.INTERRUPTED)
        .values(end_reason=f"the telephony worker shut down ({seconds:g} s drain passed)")
        .execution_options(synchronize_session=False)
    )


def load_app(settings: Settings | None = None, clock: Clock = system_clock) -> App:
    """Settings and secrets of an initialised data directory."""
    settings = settings or load_settings()
    return App(settings, load_credentials(settings), clock)


CONFIG_HEADER = """ivr configuration. Precedence: defaults < this file < IVR_* environment
(IVR_<SECTION>_<KEY>, e.g. IVR_PBX_SIP_PORT=5070). Secrets are in secrets.toml.
See README.md for every setting."""


LINES_HEADER = """
# Inbound lines: the number callers dial, the flow that answers, its language
# ("" = the flow's default or its language menu). Relative paths: from this file's folder.
[lines]
"""


SPEECH_EXAMPLE = """
# Speech-to-text of open answers. Commented out: the defaults apply. Models are never
# downloaded at run time; `ivr models` checks them and says how to fetch one.
# [stt]
# engine = "faster-whisper"      # or "google" (pip install 'ivr[google]')
# device = "cpu"                 # cpu | cuda | auto
# compute_type = ""              # empty: int8 on the CPU, float16 on a GPU
# threads = 2
# beam_size = 5
# batch_size = 8                 # speech windows decoded together; recordings a job takes along
# models_dir = ""                # where model names are looked up; empty: <data dir>/models
# google_project = ""            # engine "google": credentials from GOOGLE_APPLICATION_CREDENTIALS
# google_location = "eu"         # eu | us | global | a region such as europe-west4
# google_endpoint = ""           # empty: derived from google_location
# google_model = "long"
#
# [stt.models]                   # per language; relative paths: from the data directory
# default = "./models/faster-whisper-small"
# fi = "./models/whisper-large-v3-finnish-ct2"
# sv = "./models/kb-whisper-small-ct2"

# The job queue (transcriptions). Commented out: huey on SQLite in the data directory.
# [jobs]
# backend = "redis"              # sqlite (default) | redis
# redis_url = "redis://:PASSWORD@127.0.0.1:6379/0"
# retries = 3
# retry_delay = 30.0             # seconds before the first retry; doubled for each later one
# claim_seconds = 120.0          # a dead worker's transcription is queued again after this
# sweep_seconds = 60.0           # how often each worker looks for such lost transcriptions
"""


def init(settings: Settings | None = None, clock: Clock = system_clock) -> tuple[App, list[str]]:
    """Create the config file, secrets, folders and database (migrated to head). Idempotent."""
    settings = settings or load_settings()
    done: list[str] = []
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "recordings", "prompts"):
        (settings.data_dir / sub).mkdir(exist_ok=True)
    config = settings.config_file
    if not config.exists():
        pbx = settings.pbx
        config.write_text(
            dump_toml(
                {
                    "pbx": {
                        "bind_address": pbx.bind_address,
                        "sip_port": pbx.sip_port,
                        "ami_port": pbx.ami_port,
                        "ari_port": pbx.ari_port,
                        "rtp_start": pbx.rtp_start,
                        "rtp_end": pbx.rtp_end,
                        "softphones": pbx.softphones,
                        "trunk_host": pbx.trunk_host,
                    }
                },
                header=CONFIG_HEADER,
            )
            + LINES_HEADER
            + "".join(
                f'"{line.number}" = {{ flow = {toml_value(str(line.flow))}, '
                f"language = {toml_value(line.language)} }}\n"
                for line in settings.lines
            )
            + SPEECH_EXAMPLE
        )
        done.append(f"wrote {config}")
    creds, changed = ensure_credentials(settings)
    if changed:
        done.append(f"generated secrets in {settings.data_dir / 'secrets.toml'}")
    from ivr.store.db import safe_url
    from ivr.store.migrate import upgrade

    db = upgrade(settings.database_url)
    if db.changed:
        where = safe_url(settings.database_url)
        done.append(
            f"created the database {where} (schema {db.after})"
            if db.before is None
            else f"upgraded the database {where} from schema {db.before} to {db.after}"
        )
    return App(settings, creds, clock), done

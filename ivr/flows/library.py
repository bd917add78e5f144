"""An organisation's call flows kept in the database (table ``flows``): the one service the
staff web UI (and any command) uses to list, read, create, save, upload and delete them,
to upload prompt recordings for them and to preview their prompts.

Every call takes the acting :class:`~ivr.accounts.audit.Actor`: reading needs the reviewer
role, changing the manager role; another organisation's flow is :class:`NotFound`. Every
flow is checked by the project's loader (:func:`~ivr.flows.loader.parse_flow`: every
problem with its path and line) and by this library's own rule for stored flows: every
``upload:`` names one of the organisation's own prompts (their names start with
:func:`prompt_prefix`, the organisation's id), so one organisation can neither play nor
overwrite another's recordings.

A hand-written flow may name ``recording:`` files; a stored flow has no folder for them, so
the prompt list shows them as missing until a recording is uploaded for that prompt and
language (:meth:`FlowLibrary.upload_prompt`, the project's conversion pipeline), which
replaces the ``recording:`` with an ``upload:``.

Changes write their audit entry in the same transaction. A flow used by a running campaign
can still be changed: a campaign froze its own copy of the flow when it started, and an
uploaded recording gets a new name each time, so the copy keeps its audio too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor, NotFound
from ivr.clock import Clock
from ivr.config import Settings
from ivr.flows import library_files as files
from ivr.flows import library_yaml
from ivr.flows import preview as rendering
from ivr.flows.library_files import prompt_prefix as prompt_prefix
from ivr.flows.loader import MAX_FILE_BYTES, FlowError, Problem, parse_flow
from ivr.flows.model import Flow
from ivr.speech import prompt_audio
from ivr.store.db import reader_for
from ivr.store.models import Campaign, CampaignStatus
from ivr.store.org_models import FlowDoc, InboundLine, Role

RENDER_TIMEOUT_SECONDS = 60.0
PreviewError = rendering.PreviewError


class FlowChanged(Exception):
    """Someone else saved the flow after it was opened: nothing was saved."""


class FlowInUse(Exception):
    """The flow cannot be deleted: inbound lines answer with it."""

    def __init__(self, numbers: list[str]) -> None:
        self.numbers = numbers
        super().__init__(f"inbound lines answer with this flow: {', '.join(numbers)}")


class PromptRefused(Exception):
    """An uploaded recording that cannot be a prompt; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class FlowRecord:
    """A stored flow as it is now."""

    id: str
    org_id: str
    key: str  # the flow's own id (``id:`` in the YAML), unique in the organisation
    yaml: str
    updated_at: datetime
    updated_by: str
    flow: Flow | None  # None: it no longer passes the checks (``problems`` say why)
    problems: tuple[Problem, ...] = ()
    running: tuple[str, ...] = ()  # running or paused campaigns that started with this flow

    @property
    def title(self) -> str:
        return self.flow.name if self.flow is not None else self.key

    @property
    def recording_files(self) -> list[tuple[str, str, str]]:
        """``(path, language, file)`` of each ``recording:`` file the YAML names: a stored
        flow has no folder for them, so each needs a recording uploaded instead."""
        if self.flow is None:
            return []
        return [
            (path, language, file)
            for path, prompt in library_yaml.prompt_places(self.flow, self.yaml)
            for language, file in prompt.recording.items()
        ]

    @property
    def revision(self) -> str:
        """Changes whenever the YAML does: an edit form sends it back to catch lost updates."""
        return revision_of(self.yaml)


@dataclass(frozen=True)
class PromptCell:
    language: str
    text: str
    source: str  # "recorded" (uploaded) or "synthetic" (TTS speaks the text)
    upload: str = ""  # the uploaded prompt's name
    recording: str = ""  # a file the YAML names (``recording:``): not available here
    missing: bool = False  # no audio file for a recorded prompt (upload one)
    figures: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PromptRow:
    """One prompt of the flow, where the YAML has it, with a cell per flow language."""

    path: str  # e.g. nodes.q1.prompt, nodes.cb.steps.0.prompt, defaults.no_input
    step: str  # the step's id ("" for the flow's own prompts)
    part: str  # prompt | question | no_input | invalid | opt_out
    index: int | None  # the callback question's number (0-based)
    cells: tuple[PromptCell, ...]

    def cell(self, language: str) -> PromptCell | None:
        return next((c for c in self.cells if c.language == language), None)


@dataclass(frozen=True)
class Preview:
    rows: list[PromptRow]
    rendered: dict[tuple[str, str], rendering.Rendered]  # (path, language) -> its audio


def revision_of(yaml_text: str) -> str:
    return hashlib.sha256(yaml_text.encode()).hexdigest()[:16]


def read_upload(data: bytes, source: str) -> str:
    """An uploaded flow file's text (FlowError: too big, or not UTF-8, with the line)."""
    if len(data) > MAX_FILE_BYTES:
        size = len(data) / MAX_FILE_BYTES
        message = f"the file is {size:.1f} MB; a flow file may be at most 1 MB"
        raise FlowError([Problem("", message)], source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start : exc.start + 1].hex()
        message = f"not UTF-8 text (byte 0x{byte}); save the file as UTF-8"
        raise FlowError([Problem("", message, line)], source) from None


class FlowLibrary:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock,
        settings: Settings,
        *,
        render_timeout: float = RENDER_TIMEOUT_SECONDS,
    ) -> None:
        self.factory = factory
        self.reader = reader_for(factory)  # reads take no write lock
        self.clock = clock
        self.settings = settings
        self.render_timeout = render_timeout

    # ------------------------------------------------------------------ checking
    def check(self, org_id: str, yaml_text: str, source: str = "<flow>") -> Flow:
        """The flow in ``yaml_text`` if it may be stored for ``org_id``; else FlowError with
        every problem (the loader's, then this library's), each with its path and line."""
        flow = parse_flow(yaml_text, source)
        prefix = prompt_prefix(org_id)
        problems: list[Problem] = []
        for path, prompt in library_yaml.prompt_places(flow, yaml_text):
            for language, name in prompt.upload.items():
                if not name.startswith(prefix):
                    where = f"{path}.upload.{language}"
                    problems.append(
                        Problem(
                            where,
                            f"{name!r} is not one of this organisation's uploaded prompts: "
                            "upload the recording on the flow's prompt page",
                            library_yaml.line_of(yaml_text, where),
                        )
                    )
        if problems:
            raise FlowError(problems, source)
        return flow

    # ------------------------------------------------------------------ reading
    def list_flows(self, actor: Actor) -> list[FlowRecord]:
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            docs = s.scalars(
                sa.select(FlowDoc).where(FlowDoc.org_id == org_id).order_by(FlowDoc.name)
            ).all()
            running = self._running(s, org_id)
            return [self._record(doc, running.get(doc.name, ())) for doc in docs]

    def get(self, actor: Actor, flow_id: str) -> FlowRecord:
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            doc = self._doc(s, org_id, flow_id)
            return self._record(doc, self._running(s, org_id, doc.name).get(doc.name, ()))

    def _doc(self, s: Session, org_id: str, flow_id: str) -> FlowDoc:
        doc = s.get(FlowDoc, flow_id)
        if doc is None or doc.org_id != org_id:
            raise NotFound("no such flow")
        return doc

    def _running(
        self, s: Session, org_id: str, key: str | None = None
    ) -> dict[str, tuple[str, ...]]:
        query = sa.select(Campaign.flow_id, Campaign.name).where(
            Campaign.org_id == org_id,
            Campaign.status.in_((CampaignStatus.RUNNING, CampaignStatus.PAUSED)),
        )
        if key is not None:
            query = query.where(Campaign.flow_id == key)
        found: dict[str, list[str]] = {}
        for flow_key, name in s.execute(query.order_by(Campaign.name)):
            if flow_key is not None:
                found.setdefault(flow_key, []).append(name)
        return {k: tuple(v) for k, v in found.items()}

    def _record(self, doc: FlowDoc, running: tuple[str, ...]) -> FlowRecord:
        flow: Flow | None = None
        problems: tuple[Problem, ...] = ()
        try:
            flow = self.check(doc.org_id, doc.yaml, doc.name)
        except FlowError as exc:
            problems = tuple(exc.problems)
        return FlowRecord(
            id=doc.id,
            org_id=doc.org_id,
            key=doc.name,
            yaml=doc.yaml,
            updated_at=doc.updated_at,
            updated_by=doc.updated_by,
            flow=flow,
            problems=problems,
            running=running,
        )

    # ------------------------------------------------------------------ changing
    def create(self, actor: Actor, yaml_text: str, *, source: str = "<editor>") -> FlowRecord:
        """A new flow (the editor's "new flow"); FlowError if it is not valid or its id is
        taken in the organisation."""
        return self._add(actor, yaml_text, source, "flow.create")

    def upload(
        self, actor: Actor, yaml_text: str, *, source: str, replace: str | None = None
    ) -> FlowRecord:
        """A flow file uploaded as a new flow, or over the flow ``replace``."""
        if replace is None:
            return self._add(actor, yaml_text, source, "flow.upload")
        return self._replace(actor, replace, yaml_text, source, None, "flow.upload")

    def save(
        self, actor: Actor, flow_id: str, yaml_text: str, *, revision: str | None = None
    ) -> FlowRecord:
        """Save the flow (from the editor). ``revision``: the one the editor opened; if the
        flow changed since, FlowChanged and nothing is saved."""
        return self._replace(actor, flow_id, yaml_text, "<editor>", revision, "flow.save")

    def _add(self, actor: Actor, yaml_text: str, source: str, action: str) -> FlowRecord:
        org_id = actor.require(Role.MANAGER)
        flow = self.check(org_id, yaml_text, source)
        now = self.clock()
        with self.factory.begin() as s:
            self._id_free(s, org_id, flow.id, None, yaml_text, source)
            doc = FlowDoc(
                org_id=org_id, name=flow.id, yaml=yaml_text, updated_at=now, updated_by=actor.actor
            )
            s.add(doc)
            s.flush()
            audit.record(
                s, actor, action, at=now, target_type="flow", target_id=doc.id,
                flow=flow.id, name=flow.name, version=flow.version, source=source,
            )  # fmt: skip
            return self._record(doc, ())

    def _replace(
        self,
        actor: Actor,
        flow_id: str,
        yaml_text: str,
        source: str,
        revision: str | None,
        action: str,
    ) -> FlowRecord:
        org_id = actor.require(Role.MANAGER)
        with self.reader() as s:
            self._doc(s, org_id, flow_id)  # another organisation's: NotFound before checking
        flow = self.check(org_id, yaml_text, source)
        now = self.clock()
        with self.factory.begin() as s:
            doc = self._doc(s, org_id, flow_id)
            if revision is not None and revision != revision_of(doc.yaml):
                raise FlowChanged(f"{doc.updated_by} saved this flow after you opened it")
            self._id_free(s, org_id, flow.id, doc.id, yaml_text, source)
            before = doc.name
            doc.name, doc.yaml, doc.updated_at, doc.updated_by = (
                flow.id, yaml_text, now, actor.actor
            )  # fmt: skip
            audit.record(
                s, actor, action, at=now, target_type="flow", target_id=doc.id,
                flow=flow.id, name=flow.name, version=flow.version, source=source,
                **({"renamed_from": before} if before != flow.id else {}),
            )  # fmt: skip
            s.flush()
            return self._record(doc, self._running(s, org_id, doc.name).get(doc.name, ()))

    def _id_free(
        self, s: Session, org_id: str, key: str, own: str | None, yaml_text: str, source: str
    ) -> None:
        query = sa.select(FlowDoc.id).where(FlowDoc.org_id == org_id, FlowDoc.name == key)
        other = s.scalar(query)
        if other is not None and other != own:
            message = (
                f"this organisation has a flow with the id {key!r} already: give this one "
                "another id, or upload it on that flow's page to replace it"
            )
            raise FlowError([Problem("id", message, library_yaml.line_of(yaml_text, "id"))], source)

    def delete(self, actor: Actor, flow_id: str) -> None:
        org_id = actor.require(Role.MANAGER)
        with self.factory.begin() as s:
            doc = self._doc(s, org_id, flow_id)
            numbers = list(
                s.scalars(
                    sa.select(InboundLine.number)
                    .where(InboundLine.flow_id == doc.id)
                    .order_by(InboundLine.number)
                )
            )
            if numbers:
                raise FlowInUse(numbers)
            audit.record(
                s, actor, "flow.delete", at=self.clock(), target_type="flow", target_id=doc.id,
                flow=doc.name,
            )  # fmt: skip
            s.delete(doc)
        files.manifest_path(self.settings, flow_id).unlink(missing_ok=True)

    # ------------------------------------------------------------------ prompts
    def prompts(self, actor: Actor, flow_id: str) -> list[PromptRow]:
        """Every prompt of the flow, each language recorded (uploaded) or synthetic."""
        record = self.get(actor, flow_id)
        if record.flow is None:
            return []
        return self._rows(record.flow, record.yaml)

    def _rows(self, flow: Flow, yaml_text: str) -> list[PromptRow]:
        uploads = prompt_audio.uploads_dir(self.settings.data_dir)
        rows: list[PromptRow] = []
        for path, prompt in library_yaml.prompt_places(flow, yaml_text):
            cells: list[PromptCell] = []
            for language in flow.languages:
                name = prompt.upload.get(language, "")
                file = prompt.recording.get(language, "")
                figures = files.figures(uploads / f"{name}.json") if name else None
                missing = bool(file) or (bool(name) and not (uploads / f"{name}.wav").is_file())
                cells.append(
                    PromptCell(
                        language=language,
                        text=prompt.text.get(language, ""),
                        source="recorded" if name or file else "synthetic",
                        upload=name,
                        recording=file,
                        missing=missing,
                        figures=figures,
                    )
                )
            rows.append(PromptRow(path, *files.part(path), cells=tuple(cells)))
        return rows

    def prompt(self, actor: Actor, flow_id: str, path: str, language: str) -> PromptRow:
        """The prompt at ``path`` (NotFound if the flow has none there or not ``language``)."""
        for row in self.prompts(actor, flow_id):
            if row.path == path and row.cell(language) is not None:
                return row
        raise NotFound("no such prompt")

    def upload_prompt(
        self,
        actor: Actor,
        flow_id: str,
        path: str,
        language: str,
        file: Path,
        original_name: str,
    ) -> prompt_audio.Upload:
        """Convert ``file`` (the project's pipeline: any common format, loudness-normalised)
        into the recording of the prompt at ``path`` in ``language``, and point the flow at
        it. PromptRefused (with the reason) for a file that cannot be a prompt."""
        org_id = actor.require(Role.MANAGER)
        self.prompt(actor, flow_id, path, language)  # NotFound for another org's flow
        with tempfile.TemporaryDirectory(prefix="ivr-prompt-") as tmp:
            shown = files.safe_file_name(original_name, file.suffix)
            copy = Path(tmp) / shown
            shutil.copyfile(file, copy)
            digest = files.sha256(copy)
            name = files.upload_name(org_id, flow_id, path, language, digest)
            try:
                done = prompt_audio.upload(
                    copy, self.settings.data_dir, self.settings.prompts, name
                )
            except prompt_audio.PromptAudioError as exc:
                raise PromptRefused(exc.reason) from None
            except ValueError as exc:
                raise PromptRefused(str(exc)) from None
        now = self.clock()
        with self.factory.begin() as s:
            doc = self._doc(s, org_id, flow_id)
            try:
                text = library_yaml.set_upload(doc.yaml, path, language, name)
            except library_yaml.EditFailed:
                raise NotFound("no such prompt") from None
            flow = self.check(org_id, text, doc.name)
            doc.yaml, doc.updated_at, doc.updated_by = text, now, actor.actor
            c = done.conversion
            audit.record(
                s, actor, "prompt.upload", at=now, target_type="flow", target_id=doc.id,
                flow=flow.id, path=path, language=language, prompt=name,
                original_name=original_name, sha256=done.sha256, seconds=c.seconds,
                loudness_lufs=c.loudness_after_lufs,
            )  # fmt: skip
        return done

    def recording(self, actor: Actor, flow_id: str, path: str, language: str) -> Path:
        """The uploaded recording the prompt plays in ``language`` (8 kHz WAV)."""
        org_id = actor.require(Role.REVIEWER)
        row = self.prompt(actor, flow_id, path, language)
        cell = row.cell(language)
        if cell is None or not cell.upload or not cell.upload.startswith(prompt_prefix(org_id)):
            raise NotFound("this prompt has no uploaded recording")
        file = prompt_audio.uploads_dir(self.settings.data_dir) / f"{cell.upload}.wav"
        if not file.is_file():
            raise NotFound("the recording's file is missing")
        return file

    # ------------------------------------------------------------------ preview
    def preview(self, actor: Actor, flow_id: str) -> Preview:
        """Every prompt rendered as the caller will hear it (TTS or the uploaded recording),
        in the prompt cache. PreviewError if rendering takes longer than the time limit."""
        record = self.get(actor, flow_id)
        if record.flow is None:
            raise rendering.PreviewError("the flow does not pass its checks")
        rows = self._rows(record.flow, record.yaml)
        version = self._preview_version(record.yaml)
        rendered = self._manifest(flow_id, version)
        if rendered is None:
            found = rendering.render(self.settings, record.yaml, self.render_timeout)
            rendered = {(r.path, r.language): r for r in found}
            files.write_json(
                files.manifest_path(self.settings, flow_id),
                {"version": version, "rows": [dataclasses.asdict(r) for r in found]},
            )
        return Preview(rows, rendered)

    def preview_file(self, actor: Actor, flow_id: str, path: str, language: str) -> Path:
        """The rendered audio of one prompt of the last preview of the flow as it is now."""
        record = self.get(actor, flow_id)
        rendered = self._manifest(flow_id, self._preview_version(record.yaml))
        found = (rendered or {}).get((path, language))
        if found is None or not found.key:
            raise NotFound("this prompt has not been rendered")
        return self.settings.prompt_cache_dir / f"{found.key}.wav"

    def _preview_version(self, yaml_text: str) -> str:
        settings = json.dumps(self.settings.prompts.__dict__, sort_keys=True, default=str)
        return hashlib.sha256(f"{yaml_text}\0{settings}".encode()).hexdigest()

    def _manifest(
        self, flow_id: str, version: str
    ) -> dict[tuple[str, str], rendering.Rendered] | None:
        """The last rendering of this version of the flow, if every file is still there."""
        data = files.read_json(files.manifest_path(self.settings, flow_id))
        if not isinstance(data, dict) or data.get("version") != version:
            return None
        try:
            rows = [rendering.Rendered(**row) for row in data["rows"]]
        except (KeyError, TypeError):
            return None
        cache = self.settings.prompt_cache_dir
        if any(r.key and not (cache / f"{r.key}.wav").is_file() for r in rows):
            return None
        return {(r.path, r.language): r for r in rows}

"""Inbound lines kept in the database: an organisation's numbers and the flow that answers
each (the staff UI's "Inbound lines" page; the telephony worker picks changes up within a
couple of seconds, see ``line_directory``).

Reviewers and up may read an organisation's lines; only an admin may change them. A number
is one line in the whole installation: a number of the config file's ``[lines]`` or of any
other line (of any organisation) is refused as "in use", without saying whose. The flow must
be one of the organisation's own flows and valid. Every change writes its audit entry
(``line.create``, ``line.update``, ``line.delete``) in the same transaction.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor, NotFound
from ivr.clock import Clock
from ivr.config import Settings
from ivr.flows.loader import FlowError
from ivr.flows.model import Flow
from ivr.store.db import reader_for
from ivr.store.org_models import FlowDoc, InboundLine, Role
from ivr.telephony.line_directory import parse_flow_doc

#: Digits with an optional leading +, 2 to 20 characters in all.
NUMBER = re.compile(r"^(?=.{2,20}$)\+?[0-9]+$")
LANGUAGES = ("", "fi", "sv", "en")  # "": the flow's default language (or its menu)


@dataclass(frozen=True)
class Problem:
    """What is wrong with one field: a ``code`` a view can translate, and English text."""

    code: str  # number: format | in_use; flow: missing | invalid; language: unknown | not_in_flow
    message: str


class LineInvalid(ValueError):
    """The line was refused; ``errors`` maps each field (number, flow, language) to why."""

    def __init__(self, errors: dict[str, Problem]) -> None:
        super().__init__("; ".join(f"{f}: {p.message}" for f, p in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class LineChange:
    """What an admin enters for a line."""

    number: str
    flow_id: str
    language: str = ""
    anonymous: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class LineView:
    id: str
    number: str
    flow_id: str
    flow_name: str
    language: str
    anonymous: bool
    enabled: bool
    updated_at: datetime
    flow_valid: bool  # False: the flow was edited into errors since; the line is not answered


@dataclass(frozen=True)
class FlowChoice:
    id: str
    name: str
    languages: tuple[str, ...]  # empty if the flow does not parse
    valid: bool


#: Checks a stored flow of an organisation: (org id, YAML, source) -> the flow, or FlowError.
FlowCheck = Callable[[str, str, str], Flow]


class LineAdmin:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock,
        settings: Settings,
        *,
        check: FlowCheck | None = None,
    ) -> None:
        """``check``: what makes a stored flow valid (the flow library's own check, so a
        line accepts exactly the flows the flow pages call valid); without one, the loader's."""
        self.factory = factory
        self.reader = reader_for(factory)  # reads take no write lock
        self.clock = clock
        self.data_dir = settings.data_dir
        self.config_numbers = frozenset(line.number for line in settings.lines)
        self.check = check

    def _parse(self, doc: FlowDoc) -> Flow:
        """The flow of ``doc`` if it is valid; FlowError if not."""
        if self.check is not None:
            return self.check(doc.org_id, doc.yaml, doc.name)
        return parse_flow_doc(doc.yaml, doc.id, self.data_dir)

    # ------------------------------------------------------------------ reading
    def list(self, actor: Actor) -> list[LineView]:
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            rows = s.execute(
                sa.select(InboundLine, FlowDoc)
                .join(FlowDoc, FlowDoc.id == InboundLine.flow_id)
                .where(InboundLine.org_id == org_id)
                .order_by(InboundLine.number)
            ).all()
            valid: dict[str, bool] = {}
            return [self._view(line, doc, valid) for line, doc in rows]

    def get(self, actor: Actor, line_id: str) -> LineView:
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            line = self._line(s, org_id, line_id)
            doc = s.get(FlowDoc, line.flow_id)
            assert doc is not None  # a foreign key
            return self._view(line, doc, {})

    def flow_choices(self, actor: Actor) -> builtins.list[FlowChoice]:
        """The organisation's flows a line may use (the form's choices), by name."""
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            docs = list(
                s.scalars(sa.select(FlowDoc).where(FlowDoc.org_id == org_id).order_by(FlowDoc.name))
            )
        choices = []
        for doc in docs:
            try:
                flow = self._parse(doc)
            except FlowError:
                choices.append(FlowChoice(doc.id, doc.name, (), False))
            else:
                choices.append(FlowChoice(doc.id, doc.name, flow.languages, True))
        return choices

    # ------------------------------------------------------------------ changing
    def create(self, actor: Actor, change: LineChange) -> LineView:
        org_id = actor.require(Role.ADMIN)
        change = _clean(change)
        with self.factory.begin() as s:
            doc = self._check(s, org_id, change, line_id=None)
            line = InboundLine(
                org_id=org_id,
                number=change.number,
                flow_id=doc.id,
                language=change.language,
                anonymous=change.anonymous,
                enabled=change.enabled,
                updated_at=self.clock(),
            )
            s.add(line)
            self._flush(s)
            audit.record(
                s, actor, "line.create", at=self.clock(), target_type="line", target_id=line.id,
                org_id=org_id, number=line.number, flow_id=doc.id, flow=doc.name,
                language=line.language, anonymous=line.anonymous, enabled=line.enabled,
            )  # fmt: skip
            return self._view(line, doc, {})

    def update(self, actor: Actor, line_id: str, change: LineChange) -> LineView:
        org_id = actor.require(Role.ADMIN)
        change = _clean(change)
        with self.factory.begin() as s:
            line = self._line(s, org_id, line_id)
            doc = self._check(s, org_id, change, line_id=line.id)
            before = _values(line)
            line.number = change.number
            line.flow_id = doc.id
            line.language = change.language
            line.anonymous = change.anonymous
            line.enabled = change.enabled
            after = _values(line)
            changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
            if not changed:
                return self._view(line, doc, {})
            line.updated_at = self.clock()
            self._flush(s)
            audit.record(
                s, actor, "line.update", at=self.clock(), target_type="line", target_id=line.id,
                org_id=org_id, number=line.number, changed=changed,
            )  # fmt: skip
            return self._view(line, doc, {})

    def delete(self, actor: Actor, line_id: str) -> str:
        """Remove a line; returns its number."""
        org_id = actor.require(Role.ADMIN)
        with self.factory.begin() as s:
            line = self._line(s, org_id, line_id)
            number = line.number
            s.delete(line)
            audit.record(
                s, actor, "line.delete", at=self.clock(), target_type="line", target_id=line_id,
                org_id=org_id, number=number, flow_id=line.flow_id,
            )  # fmt: skip
        return number

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _line(s: Session, org_id: str, line_id: str) -> InboundLine:
        line = s.scalar(
            sa.select(InboundLine).where(InboundLine.id == line_id, InboundLine.org_id == org_id)
        )
        if line is None:
            raise NotFound("no such line in this organisation")
        return line

    def _check(self, s: Session, org_id: str, change: LineChange, line_id: str | None) -> FlowDoc:
        """The flow of a valid change (LineInvalid naming every field that is not)."""
        errors: dict[str, Problem] = {}
        number = change.number
        if not NUMBER.match(number):
            errors["number"] = Problem(
                "format", "enter digits only (a + may come first), 2 to 20 characters"
            )
        elif number in self.config_numbers or self._taken(s, number, line_id):
            errors["number"] = Problem("in_use", f"{number} is already in use")
        doc = (
            s.scalar(
                sa.select(FlowDoc).where(FlowDoc.id == change.flow_id, FlowDoc.org_id == org_id)
            )
            if change.flow_id
            else None
        )
        if doc is None:
            errors["flow"] = Problem("missing", "choose one of the organisation's flows")
        languages: tuple[str, ...] = ()
        if doc is not None:
            try:
                languages = self._parse(doc).languages
            except FlowError as exc:
                errors["flow"] = Problem(
                    "invalid", f"the flow {doc.name!r} has errors: {exc.problems[0].message}"
                )
        if change.language not in LANGUAGES:
            errors["language"] = Problem("unknown", "choose fi, sv, en or the flow's default")
        elif change.language and languages and change.language not in languages:
            errors["language"] = Problem(
                "not_in_flow", f"the flow has no {change.language} (it has {', '.join(languages)})"
            )
        if errors:
            raise LineInvalid(errors)
        assert doc is not None
        return doc

    @staticmethod
    def _taken(s: Session, number: str, line_id: str | None) -> bool:
        query = sa.select(InboundLine.id).where(InboundLine.number == number)
        if line_id is not None:
            query = query.where(InboundLine.id != line_id)
        return s.scalar(query.limit(1)) is not None

    @staticmethod
    def _flush(s: Session) -> None:
        """Write now: a number taken meanwhile (the unique index) is "in use" too."""
        try:
            s.flush()
        except IntegrityError:
            raise LineInvalid(
                {"number": Problem("in_use", "the number is already in use")}
            ) from None

    def _view(self, line: InboundLine, doc: FlowDoc, valid: dict[str, bool]) -> LineView:
        if doc.id not in valid:
            try:
                self._parse(doc)
                valid[doc.id] = True
            except FlowError:
                valid[doc.id] = False
        return LineView(
            id=line.id,
            number=line.number,
            flow_id=doc.id,
            flow_name=doc.name,
            language=line.language,
            anonymous=line.anonymous,
            enabled=line.enabled,
            updated_at=line.updated_at,
            flow_valid=valid[doc.id],
        )


def _clean(change: LineChange) -> LineChange:
    """Surrounding blanks off; spaces and dashes inside a number are how people write them."""
    number = re.sub(r"[\s\-]", "", change.number.strip())
    return LineChange(
        number, change.flow_id.strip(), change.language.strip(), change.anonymous, change.enabled
    )


def _values(line: InboundLine) -> dict[str, Any]:
    """The fields an admin edits (LineChange's), as the line has them."""
    return {f.name: getattr(line, f.name) for f in fields(LineChange)}

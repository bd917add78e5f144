"""The export service: the web UI's downloads and ``ivr report`` call it.

``open`` checks the actor (manager and up; another organisation's campaign is NotFound; a
phone-number column only for an admin or the command line) and writes the audit entry
(``export.download`` with the format) in its own transaction, before a byte is sent. The
writers then read the campaign in keyset-paged chunks in a session of their own, so they
can run inside a streamed HTTP response after the view has returned.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor
from ivr.campaigns import admin_flows
from ivr.campaigns.admin import _find, _scope
from ivr.clock import Clock
from ivr.exports import columns, csv_out, dataset, sav_out, xlsx_out
from ivr.exports import rows as reads
from ivr.exports.columns import Cell, Question
from ivr.store.models import Campaign
from ivr.store.org_models import Role

log = logging.getLogger(__name__)

TABLE_FORMATS = ("csv", "xlsx", "sav")
FORMATS = ("json", *TABLE_FORMATS, "codebook", "dataset")


class ExportError(ValueError):
    """A request the exports cannot serve (an unknown format, say)."""


@dataclass(frozen=True)
class Target:
    """The campaign being exported, as the writers need it."""

    campaign_id: str
    name: str
    org_id: str | None
    language: str  # of the labels and question texts
    questions: tuple[Question, ...]

    def question_texts(self) -> dict[str, str]:
        return {q.node_id: q.text for q in self.questions}


def weights(
    factory: sessionmaker[Session], campaign_id: str, clock: Clock
) -> Mapping[tuple[str, str, str], float]:
    """The raking weight of a respondent per cell ``(language, age_group, area)`` (every
    respondent of a cell has the same weight), from the campaign's report (``ivr.reports``:
    raked to the contact list's margins), its counts from the report's cache while current."""
    from ivr.reports.cache import cached_report

    try:
        return cached_report(factory, campaign_id, clock=clock).cell_weights
    except Exception:  # the table is still worth having: its weight column stays empty
        log.exception("campaign %s: no raking weights for the export", campaign_id)
        return {}


class Exports:
    def __init__(self, factory: sessionmaker[Session], clock: Clock) -> None:
        self.factory = factory
        self.clock = clock

    # ------------------------------------------------------------------ access
    def target(self, actor: Actor, campaign: str) -> Target:
        """The campaign ``campaign`` (an id or a name) of the actor's organisation; no
        audit entry (for the exports page)."""
        org_id = _scope(actor, Role.MANAGER)
        with self.factory() as s:
            return self._target(s, _find(s, org_id, campaign))

    def _target(self, s: Session, campaign: Campaign) -> Target:
        language = campaign.default_language.value
        flow = admin_flows.heard(s, campaign)
        if flow is None:
            log.warning("campaign %s: its flow cannot be read: no question columns", campaign.id)
        found = tuple(columns.questions(flow, language)) if flow else ()
        return Target(campaign.id, campaign.name, campaign.org_id, language, found)

    def open(self, actor: Actor, campaign: str, export_format: str, **detail: Any) -> Target:
        """The campaign for an export in ``export_format``, audited as ``export.download``
        (``detail``: the export's options, e.g. ``layout``, ``with_phone``)."""
        if export_format not in FORMATS:
            raise ExportError(f"unknown format {export_format!r}: use one of {', '.join(FORMATS)}")
        org_id = _scope(actor, Role.MANAGER)
        if detail.get("with_phone") and not actor.is_cli:
            actor.require(Role.ADMIN)  # phone numbers beside answers: admins only
        with self.factory.begin() as s:
            found = _find(s, org_id, campaign)
            target = self._target(s, found)
            extra = (
                {"recordings": reads.count_reviewed(s, found.id)}
                if export_format == "dataset"
                else {}
            )
            audit.record(
                s, actor, "export.download", at=self.clock(), org_id=found.org_id,
                target_type="campaign", target_id=found.id, name=found.name,
                format=export_format, **detail, **extra,
            )  # fmt: skip
        return target

    # ------------------------------------------------------------------ rows
    @contextlib.contextmanager
    def _reading(self) -> Iterator[Session]:
        with self.factory() as s:
            yield s

    def header(
        self, target: Target, *, long: bool = False, with_phone: bool = False
    ) -> list[tuple[str, str]]:
        if long:
            return columns.long_header()
        return columns.wide_header(target.questions, with_phone=with_phone)

    def rows(
        self, target: Target, *, long: bool = False, labels: bool = False, with_phone: bool = False
    ) -> Iterator[list[Cell]]:
        """The table's rows, read in chunks (a generator: the reads happen as it is
        consumed)."""
        by_node = {q.node_id: q for q in target.questions}
        cell_weights = {} if long else weights(self.factory, target.campaign_id, self.clock)
        with self._reading() as s, reads.fewer_collections():
            for record in reads.contacts(s, target.campaign_id, times=long):
                if long:
                    yield from columns.long_rows(record, by_node)
                else:
                    yield columns.wide_row(
                        record, target.questions, None, labels=labels,
                        with_phone=with_phone, cell_weights=cell_weights,
                    )  # fmt: skip

    # ------------------------------------------------------------------ formats
    def csv(
        self,
        target: Target,
        *,
        long: bool = False,
        labels: bool = False,
        with_phone: bool = False,
        delimiter: str = ";",
    ) -> Iterator[bytes]:
        names = [name for name, _ in self.header(target, long=long, with_phone=with_phone)]
        table = self.rows(target, long=long, labels=labels, with_phone=with_phone)
        return csv_out.chunks(names, table, delimiter=delimiter)

    def xlsx(
        self, target: Target, *, long: bool = False, labels: bool = False, with_phone: bool = False
    ) -> Iterator[bytes]:
        names = [name for name, _ in self.header(target, long=long, with_phone=with_phone)]
        table = self.rows(target, long=long, labels=labels, with_phone=with_phone)
        return xlsx_out.chunks("Answers" if long else "Contacts", names, table)

    def write_xlsx(
        self,
        target: Target,
        out: IO[bytes],
        *,
        long: bool = False,
        labels: bool = False,
        with_phone: bool = False,
    ) -> int:
        names = [name for name, _ in self.header(target, long=long, with_phone=with_phone)]
        table = self.rows(target, long=long, labels=labels, with_phone=with_phone)
        return xlsx_out.write(out, "Answers" if long else "Contacts", names, table)

    def variables(self, target: Target, *, with_phone: bool = False) -> list[sav_out.Variable]:
        """The ``.sav``'s variables with their codes (a scan of the stored values)."""
        header = self.header(target, with_phone=with_phone)
        names = [name for name, _ in header]
        extras = sav_out.scan_extras(
            target.questions, names, self.rows(target, with_phone=with_phone)
        )
        return sav_out.variables(header, target.questions, extras)

    def write_sav(
        self, target: Target, path: Path, *, with_phone: bool = False
    ) -> list[sav_out.Variable]:
        """Write the ``.sav`` (built in memory: see ``sav_out``); its variables."""
        found = self.variables(target, with_phone=with_phone)
        sav_out.write(path, found, self.rows(target, with_phone=with_phone))
        return found

    def codebook(self, target: Target, *, delimiter: str = ";") -> Iterator[bytes]:
        return sav_out.codebook_chunks(self.variables(target), delimiter=delimiter)

    def _clips(self, target: Target) -> Iterator[reads.Clip]:
        with self._reading() as s:
            yield from reads.reviewed_clips(s, target.campaign_id)

    def reviewed_count(self, target: Target) -> int:
        """How many reviewed transcripts the speech dataset would hold."""
        with self._reading() as s:
            return reads.count_reviewed(s, target.campaign_id)

    def dataset_zip(self, target: Target) -> Iterator[bytes]:
        return dataset.zip_chunks(lambda: self._clips(target), target.name, target.question_texts())

    def write_dataset(self, target: Target, folder: Path) -> int:
        return dataset.write_folder(
            folder, self._clips(target), target.name, target.question_texts()
        )

    def report(self, target: Target) -> dict[str, Any]:
        """The campaign report's numbers (``ivr.reports``: funnel, AAPOR rates, per-question
        counts, representativeness, cost), JSON-ready. Through the report's cache
        (``ivr.reports.cache``): a run stores the counts the report page then reads."""
        from ivr.reports.cache import cached_report

        made = cached_report(self.factory, target.campaign_id, clock=self.clock)
        out: dict[str, Any] = made.to_dict()
        return out

"""The line directory (``ivr.telephony.line_directory``) on a real database and the real
prompt renderer, without Asterisk: the config file's lines and the database's enabled lines
merged, kept current, a broken flow skipped (logged once) while the others work."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.accounts.audit import Actor
from ivr.bootstrap import App, init
from ivr.clock import MovableClock
from ivr.config import EXAMPLE_FLOWS, load_settings
from ivr.flows.loader import load_flow
from ivr.flows.walk import iter_prompts
from ivr.services import Services
from ivr.speech.prompts import PromptStore
from ivr.store.org_models import FlowDoc, InboundLine
from ivr.telephony.line_admin import LineChange
from ivr.telephony.line_directory import LineDirectory
from ivr.telephony.prompt_media import PromptMedia
from ivr.telephony.service import Line

SURVEY = (EXAMPLE_FLOWS / "survey-call-in.yaml").read_text(encoding="utf-8")
HOUSING = (EXAMPLE_FLOWS / "housing-line.yaml").read_text(encoding="utf-8")
BROKEN = SURVEY.replace("start: ", "start: no-such-node-", 1)


@dataclass
class Holder:
    """What the directory keeps current (the telephony service's ``lines``)."""

    lines: dict[str, Line] = field(default_factory=dict)


@dataclass
class World:
    app: App
    services: Services
    org_id: str
    prompts: PromptMedia
    config_line: Line

    @property
    def actor(self) -> Actor:
        return Actor.cli(self.org_id)

    def flow(self, name: str, yaml_text: str) -> str:
        with self.services.factory.begin() as s:
            doc = FlowDoc(org_id=self.org_id, name=name, yaml=yaml_text)
            s.add(doc)
            s.flush()
            return doc.id

    def directory(self, holder: Holder, interval: float = 60.0) -> LineDirectory:
        return LineDirectory(
            holder,
            self.services.factory,
            self.prompts.prerender,
            {"100": self.config_line},
            self.app.settings.data_dir,
            interval=interval,
        )


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    app, _ = init(load_settings(environ={"IVR_DATA_DIR": str(tmp_path / "data")}), MovableClock())
    services = app.services()
    org = services.accounts.add_org(Actor.cli(), "Gammala")
    prompts = PromptMedia(PromptStore.from_settings(app.settings))
    config_flow = load_flow(EXAMPLE_FLOWS / "survey-call-in.yaml")
    try:
        yield World(app, services, org.id, prompts, Line("100", config_flow, "fi"))
    finally:
        services.close()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


def test_database_lines_join_the_config_lines_and_follow_every_change(world: World) -> None:
    survey = world.flow("kysely", SURVEY)
    housing = world.flow("asuminen", HOUSING)
    admin = world.services.lines
    line = admin.create(world.actor, LineChange("0201234567", survey, "sv", anonymous=True))
    admin.create(world.actor, LineChange("0207654321", housing, enabled=False))
    holder = Holder()

    async def scenario() -> None:
        directory = world.directory(holder)
        await directory.start()
        try:
            assert set(holder.lines) == {"100", "0201234567"}  # the disabled line is not in
            assert holder.lines["100"] is world.config_line
            db_line = holder.lines["0201234567"]
            assert db_line.flow.id == "strategy-survey-call-in"
            assert (db_line.language, db_line.anonymous) == ("sv", True)
            assert Path(db_line.flow.source).parent == world.app.settings.data_dir / "flows"
            # Its prompts were rendered before it was put in (a call plays them at once).
            assert all(
                world.prompts.cached(db_line.flow, prompt, language) is not None
                for _path, language, prompt in iter_prompts(db_line.flow)
            )
            before = holder.lines
            changes = directory.changes
            await directory.refresh()  # nothing changed: the same dict stays
            assert holder.lines is before and directory.changes == changes

            admin.update(world.actor, line.id, LineChange("0201234567", housing, ""))
            await directory.refresh()
            assert holder.lines is not before  # replaced, not edited in place
            assert set(before) == {"100", "0201234567"}  # a call holding the old one keeps it
            assert before["0201234567"].flow.id == "strategy-survey-call-in"
            assert holder.lines["0201234567"].flow.id == "housing-line"
            assert holder.lines["0201234567"].language is None
            assert holder.lines["0201234567"].anonymous is False

            admin.update(world.actor, line.id, LineChange("0201234567", housing, enabled=False))
            await directory.refresh()
            assert set(holder.lines) == {"100"}
            admin.delete(world.actor, line.id)
            await directory.refresh()
            assert set(holder.lines) == {"100"}
        finally:
            await directory.stop()

    asyncio.run(scenario())


def test_the_background_pass_picks_a_new_line_up(world: World) -> None:
    survey = world.flow("kysely", SURVEY)
    holder = Holder()

    async def scenario() -> None:
        directory = world.directory(holder, interval=0.2)
        await directory.start()
        try:
            assert set(holder.lines) == {"100"}
            await asyncio.to_thread(
                world.services.lines.create, world.actor, LineChange("0201234567", survey)
            )
            await directory.refreshed(10)  # the loop's next pass, not one we ran
            assert set(holder.lines) == {"100", "0201234567"}
        finally:
            await directory.stop()

    asyncio.run(scenario())


def test_a_broken_flow_is_logged_once_and_skipped_while_the_others_work(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    survey = world.flow("kysely", SURVEY)
    broken = world.flow("rikki", SURVEY)
    world.services.lines.create(world.actor, LineChange("0201111111", survey))
    world.services.lines.create(world.actor, LineChange("0202222222", broken))
    with world.services.factory.begin() as s:  # edited into errors after the line was made
        doc = s.get(FlowDoc, broken)
        assert doc is not None
        doc.yaml = BROKEN
    holder = Holder()

    async def scenario() -> None:
        directory = world.directory(holder)
        with caplog.at_level(logging.WARNING, logger="ivr.telephony.line_directory"):
            await directory.start()
            await directory.refresh()
            await directory.refresh()
        try:
            assert set(holder.lines) == {"100", "0201111111"}
            warnings = [r.getMessage() for r in caplog.records if "0202222222" in r.getMessage()]
            assert len(warnings) == 1, warnings
            assert "'rikki' has errors" in warnings[0] and "no-such-node" in warnings[0]
            # Fixed: answered from the next pass on.
            with world.services.factory.begin() as s:
                doc = s.get(FlowDoc, broken)
                assert doc is not None
                doc.yaml = SURVEY
            await directory.refresh()
            assert set(holder.lines) == {"100", "0201111111", "0202222222"}
        finally:
            await directory.stop()

    asyncio.run(scenario())


def test_a_config_line_wins_over_a_database_line_of_the_same_number(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The admin service refuses the config file's numbers; a line left over from before
    the config file named it (written here directly) is not answered, and said so once."""
    housing = world.flow("asuminen", HOUSING)
    with world.services.factory.begin() as s:
        s.add(InboundLine(org_id=world.org_id, number="100", flow_id=housing))
    holder = Holder()

    async def scenario() -> None:
        directory = world.directory(holder)
        with caplog.at_level(logging.WARNING, logger="ivr.telephony.line_directory"):
            await directory.start()
            await directory.refresh()
        await directory.stop()

    asyncio.run(scenario())
    assert holder.lines == {"100": world.config_line}
    shadowed = [r for r in caplog.records if "config file's [lines]" in r.getMessage()]
    assert len(shadowed) == 1


def test_a_database_that_cannot_be_read_leaves_the_lines_as_they_are(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    survey = world.flow("kysely", SURVEY)
    world.services.lines.create(world.actor, LineChange("0201234567", survey))
    holder = Holder()

    def rename(old: str, new: str) -> None:
        with world.services.factory.begin() as s:
            s.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))

    async def scenario() -> None:
        directory = world.directory(holder, interval=0.1)
        await directory.start()
        try:
            lines = holder.lines
            assert set(lines) == {"100", "0201234567"}
            with caplog.at_level(logging.WARNING, logger="ivr.telephony.line_directory"):
                await asyncio.to_thread(rename, "inbound_lines", "inbound_lines_away")
                with pytest.raises(TimeoutError):  # no pass succeeds meanwhile
                    await directory.refreshed(1.0)
                assert holder.lines is lines  # kept as they were
                await asyncio.to_thread(rename, "inbound_lines_away", "inbound_lines")
                await directory.refreshed(10)
            assert set(holder.lines) == {"100", "0201234567"}
            failures = [r for r in caplog.records if "cannot be read" in r.getMessage()]
            assert len(failures) == 1, [r.getMessage() for r in failures]  # once, not per pass
        finally:
            await directory.stop()

    asyncio.run(scenario())

"""One clock: only ``ivr/clock.py`` reads the wall clock; every part of an App shares its
clock; a MovableClock runs on from where it is set."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.clock import MovableClock, system_clock

IVR = Path(__file__).resolve().parents[2] / "ivr"

# Attribute calls that read the wall clock (for a decision or not): only ivr/clock.py may.
WALL_READS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "localtime"),
    ("time", "gmtime"),
}


def _wall_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if (name, node.func.attr) in WALL_READS:
                found.append(f"{path.name}:{node.lineno}: {name}.{node.func.attr}()")
    return found


def test_only_the_clock_module_reads_the_wall_clock() -> None:
    reads = [
        hit
        for path in sorted(IVR.rglob("*.py"))
        if path != IVR / "clock.py"
        for hit in _wall_reads(path)
    ]
    assert reads == [], "read the App's clock instead:\n" + "\n".join(reads)


def test_the_scan_finds_a_wall_clock_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import datetime, time\nx = datetime.datetime.now()\ny = time.time()\n")
    assert len(_wall_reads(bad)) == 2


def test_a_movable_clock_runs_on_from_where_it_is_set() -> None:
    wall = [datetime(2030, 1, 1, tzinfo=UTC)]
    clock = MovableClock(wall=lambda: wall[0])
    assert clock() == wall[0]
    monday = datetime(2024, 3, 11, 10, 0, tzinfo=ZoneInfo("Europe/Helsinki"))
    clock.set(monday)
    assert clock() == monday
    wall[0] += timedelta(seconds=5)
    assert clock() == monday + timedelta(seconds=5)
    clock.advance(timedelta(hours=1))
    assert clock() == monday + timedelta(hours=1, seconds=5)
    assert clock().tzinfo is UTC
    clock.reset()
    assert clock() == wall[0]
    with pytest.raises(ValueError, match="aware"):
        clock.set(datetime(2024, 3, 11, 10, 0))


def test_the_system_clock_is_aware_utc() -> None:
    assert system_clock().tzinfo is UTC

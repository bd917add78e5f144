"""The one clock. Whatever decides by time (the campaign admin, the dialer, call sessions,
the rules, the store's timestamps) reads it from the ``App``'s clock: ``system_clock`` in
production, a ``MovableClock`` in tests and rehearsals. Only this module reads the wall
clock; a test (``tests/unit/test_one_clock.py``) keeps it that way.

Durations and deadlines inside one process (timeouts, pacing) use ``time.monotonic`` or
the event loop's time, which never jump; they decide nothing by the date.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

#: A clock: called, it returns the time now as an aware datetime.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def _aware(when: datetime, what: str) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{what}: give an aware datetime (with a time zone), not {when!r}")
    return when.astimezone(UTC)


class MovableClock:
    """Real time running on from an instant that can be set: a Monday at 10:00 runs on as
    10:00:01, 10:00:02... and can be moved (``set``, ``advance``) while in use. Shared by
    every part of one process (and safe to move from another thread)."""

    def __init__(self, start: datetime | None = None, *, wall: Clock = system_clock) -> None:
        self._wall = wall
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        if start is not None:
            self.set(start)

    def __call__(self) -> datetime:
        return self._wall() + self._offset

    def set(self, when: datetime) -> None:
        """Read ``when`` now, and run on from there."""
        target = _aware(when, "MovableClock.set")
        with self._lock:
            self._offset = target - self._wall()

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._offset += delta

    def reset(self) -> None:
        """Back to the wall clock."""
        with self._lock:
            self._offset = timedelta(0)

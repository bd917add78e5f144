"""What calls cost: a provider's rounding rule and price per minute (pure).

A rule is written ``MIN/STEP`` in seconds, as providers print it: ``60/60`` bills every
started minute, ``1/1`` by the second, ``30/6`` at least 30 s and then in 6 s steps,
``60/1`` at least a minute and then by the second. A call with no talk time (not answered)
costs nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

_RULE = re.compile(r"\s*(\d{1,4})\s*/\s*(\d{1,4})\s*")


class BillingRuleError(ValueError):
    """A rule that is not ``MIN/STEP`` with whole seconds; the message says why."""


@dataclass(frozen=True)
class BillingRule:
    minimum: int  # seconds billed at least, for any answered call
    step: int  # then rounded up to a multiple of this many seconds

    def __str__(self) -> str:
        return f"{self.minimum}/{self.step}"

    def billable_seconds(self, talk_seconds: float | None) -> int:
        """The seconds the provider bills for one call of ``talk_seconds``."""
        if talk_seconds is None or talk_seconds <= 0:
            return 0
        seconds = max(float(self.minimum), talk_seconds)
        # A float's tail (60.0000001) must not bill another step.
        return math.ceil(round(seconds / self.step, 6)) * self.step


def parse_rule(text: str) -> BillingRule:
    """``"60/60"`` → BillingRule(60, 60); a clear error for anything else."""
    match = _RULE.fullmatch(text or "")
    if match is None:
        raise BillingRuleError(
            f"billing rule {text!r}: write it as MIN/STEP in seconds, e.g. 60/60 or 1/1"
        )
    minimum, step = int(match.group(1)), int(match.group(2))
    if step < 1:
        raise BillingRuleError(f"billing rule {text!r}: the step must be at least 1 second")
    return BillingRule(minimum, step)


@dataclass(frozen=True)
class Cost:
    calls: int  # answered calls billed
    billable_seconds: int
    price_per_minute: float | None  # None: no price set, so no amount

    @property
    def billable_minutes(self) -> float:
        return self.billable_seconds / 60

    @property
    def amount(self) -> float | None:
        if self.price_per_minute is None:
            return None
        return round(self.billable_minutes * self.price_per_minute, 2)

    def per(self, count: int) -> float | None:
        """The amount divided by ``count`` (cost per completed answer); None if either is
        missing or zero."""
        amount = self.amount
        return None if amount is None or count <= 0 else round(amount / count, 2)


def cost(rule: BillingRule, price_per_minute: float | None, talk: Iterable[float | None]) -> Cost:
    """The cost of calls with these talk times under ``rule``."""
    calls = 0
    seconds = 0
    for t in talk:
        billed = rule.billable_seconds(t)
        if billed:
            calls += 1
            seconds += billed
    return Cost(calls, seconds, price_per_minute)

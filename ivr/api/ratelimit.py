"""Rate limits per API token: a token bucket held in this process's memory.

Each token may make ``burst`` requests at once and ``rate`` a second after that; a request
over the limit is answered 429 with ``Retry-After`` (whole seconds until one is allowed).
The buckets are per process: with N web workers a token gets up to N times the rate (the
limit is there against runaway scripts, not as a quota). Time comes from the App's clock.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class _Bucket:
    tokens: float
    at: datetime


@dataclass
class RateLimiter:
    rate: float = 10.0  # requests a second, sustained
    burst: int = 100  # requests at once
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str, now: datetime) -> float:
        """0 when the request may go ahead, else the seconds to wait."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            elapsed = max((now - bucket.at).total_seconds(), 0.0)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def remaining(self, key: str) -> int:
        with self._lock:
            bucket = self._buckets.get(key)
            return self.burst if bucket is None else int(bucket.tokens)


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))

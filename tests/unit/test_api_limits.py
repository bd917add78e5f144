"""The API's rate limiter, idempotency fingerprints and problem details (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from ivr.api.idempotency import fingerprint
from ivr.api.problems import FieldError, Problem, invalid
from ivr.api.ratelimit import RateLimiter, retry_after

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_a_bucket_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("t", T0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("t", T0)
    assert wait == 0.5 and retry_after(wait) == "1"
    assert limiter.take("other", T0) == 0.0  # per token
    assert limiter.take("t", T0 + timedelta(seconds=0.5)) == 0.0
    assert limiter.take("t", T0 + timedelta(seconds=0.5)) > 0
    assert limiter.take("t", T0 + timedelta(hours=1)) == 0.0
    assert limiter.remaining("t") == 2  # refilled to the burst, one taken


def test_fingerprints_differ_by_method_path_and_body() -> None:
    base = fingerprint("POST", "/api/v1/campaigns", b'{"a":1}')
    assert base == fingerprint("POST", "/api/v1/campaigns", b'{"a":1}')
    assert base != fingerprint("POST", "/api/v1/campaigns", b'{"a":2}')
    assert base != fingerprint("POST", "/api/v1/campaign", b's{"a":1}')


def test_problem_details_are_rfc_9457_with_the_fields() -> None:
    problem = invalid([FieldError("contacts[3].phone", "not a phone number", "invalid")])
    body = problem.body()
    assert body["status"] == 422 and str(body["type"]).endswith("/invalid")
    assert body["errors"] == [
        {"field": "contacts[3].phone", "detail": "not a phone number", "code": "invalid"}
    ]
    response = Problem(429, "rate_limited", "slow", headers={"Retry-After": "2"}).response("/x")
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "2"
    assert json.loads(response.get_data())["instance"] == "/x"

"""The OpenAPI document is valid OpenAPI 3.1 (schemathesis loads it), and a property-based
run against the real app and database (SQLite and PostgreSQL) with a real write token finds
no server error and no response that breaks the document: status codes, media types and
bodies as documented."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ivr.api.ratelimit import RateLimiter
from tests.api.conftest import MakeApi, Site

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_token(module_site: Site, make_api: MakeApi) -> str:
    # The property run makes many requests at a frozen clock: no rate limit for it (the
    # limit has its own test).
    module_site.app.extensions["ivr_api"].limiter = RateLimiter(rate=1e6, burst=10**6)
    return make_api(name="schemathesis").secret


@pytest.fixture(scope="module")
def api_schema(module_site: Site) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", module_site.app)


schema = schemathesis.pytest.from_fixture("api_schema")


def test_the_document_is_openapi_3_1(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert api_schema.raw_schema["openapi"] == "3.1.0"
    assert len(operations) >= 18
    assert {o.method.upper() for o in operations} == {"GET", "POST"}


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_no_response_breaks_the_document(case: Any, api_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {api_token}"}, checks=CHECKS)

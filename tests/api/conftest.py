"""Fixtures of the REST API tests: the web tests' instance (``module_site``: SQLite and
PostgreSQL), and API tokens made through the token service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ivr.api.ratelimit import RateLimiter
from ivr.api.tokens import ApiTokens
from tests.web.conftest import (  # noqa: F401 (fixtures)
    Site,
    Users,
    clock,
    module_site,
    orgs,
    services,
    users,
    web_app,
)


class Api:
    """A client that sends one organisation's token."""

    def __init__(self, client: FlaskClient, secret: str) -> None:
        self.client = client
        self.secret = secret

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}", **(extra or {})}

    def get(self, path: str, **query: Any) -> TestResponse:
        return self.client.get(f"/api/v1{path}", query_string=query, headers=self.headers())

    def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> TestResponse:
        return self.client.post(
            f"/api/v1{path}", json=body if body is not None else {}, headers=self.headers(headers)
        )

    def walk(self, path: str, **query: Any) -> list[dict[str, Any]]:
        """Every row of a list, page by page with the cursors."""
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:
            args = dict(query)
            if cursor:
                args["starting_after"] = cursor
            got = self.get(path, **args)
            assert got.status_code == 200, got.get_data(as_text=True)
            page = got.get_json()
            rows += page["data"]
            assert page["has_more"] is (page["next_cursor"] is not None)
            if not page["has_more"]:
                return rows
            cursor = page["next_cursor"]


MakeApi = Callable[..., Api]


@pytest.fixture(scope="module")
def make_api(module_site: Site, users: Users) -> MakeApi:  # noqa: F811
    tokens = ApiTokens(module_site.services.factory, module_site.clock)
    # The tests walk lists page by page: the rate limit has its own test (tight_limit).
    module_site.app.extensions["ivr_api"].limiter = RateLimiter(rate=1000, burst=10_000)

    def make(org: str = "a", scope: str = "write", name: str = "integration") -> Api:
        admin = getattr(users, org).admin
        made = tokens.create(admin.actor(), name, scope)
        return Api(module_site.app.test_client(), made.secret)

    return make

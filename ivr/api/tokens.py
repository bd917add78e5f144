"""Organisations' API tokens: made (the secret shown once), listed, revoked, and checked on
each request (with the time of last use).

A token is ``ivr_`` followed by 43 URL-safe characters (256 random bits); only its SHA-256
is stored. A random secret of that size needs no slow password hash: nobody can guess it,
and a leaked database gives no usable token. Making and revoking are in the audit log.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor, NotFound
from ivr.clock import Clock
from ivr.store.api_models import ApiToken, TokenScope
from ivr.store.org_models import Organisation, Role

PREFIX: Final = "ivr_"
SHOWN: Final = 12  # characters of the token kept in clear to recognise it ("ivr_AbCdEfGh")
MAX_NAME: Final = 100
# A token's last use is written at most this often (not one write per request).
TOUCH_EVERY: Final = timedelta(seconds=60)


class TokenInvalid(ValueError):
    """A token's settings are wrong: ``field`` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TokenInfo:
    id: str
    org_id: str
    name: str
    scope: TokenScope
    prefix: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Made:
    info: TokenInfo
    secret: str  # shown once; never stored


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        row.id, row.org_id, row.name, row.scope, row.prefix, row.created_at, row.created_by,
        row.last_used_at, row.revoked_at,
    )  # fmt: skip


class ApiTokens:
    def __init__(self, factory: sessionmaker[Session], clock: Clock) -> None:
        self.factory = factory
        self.clock = clock

    def create(self, actor: Actor, name: str, scope: TokenScope | str) -> Made:
        """A new token of the actor's organisation (admins only)."""
        org_id = actor.require(Role.ADMIN)
        clean = " ".join(name.split())
        if not clean:
            raise TokenInvalid("name", "give the token a name (what uses it)")
        if len(clean) > MAX_NAME:
            raise TokenInvalid("name", f"the name is longer than {MAX_NAME} characters")
        try:
            chosen = TokenScope(scope)
        except ValueError:
            raise TokenInvalid("scope", "the scope is read or write") from None
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self.factory.begin() as s:
            if s.get(Organisation, org_id) is None:
                raise NotFound("no such organisation")
            row = ApiToken(
                org_id=org_id, name=clean, scope=chosen, prefix=secret[:SHOWN],
                token_hash=hash_token(secret), created_at=now, created_by=actor.actor,
            )  # fmt: skip
            s.add(row)
            s.flush()
            audit.record(
                s, actor, "api_token.create", at=now, target_type="api_token",
                target_id=row.id, name=clean, scope=chosen.value, prefix=row.prefix,
            )  # fmt: skip
            return Made(_info(row), secret)

    def revoke(self, actor: Actor, token_id: str) -> bool:
        """Revoke a token at once; False: it was revoked already."""
        org_id = actor.require(Role.ADMIN)
        now = self.clock()
        with self.factory.begin() as s:
            row = s.scalars(
                sa.select(ApiToken).where(ApiToken.id == token_id, ApiToken.org_id == org_id)
            ).first()
            if row is None:
                raise NotFound("no such API token in this organisation")
            if row.revoked_at is not None:
                return False
            row.revoked_at = now
            row.revoked_by = actor.actor
            audit.record(
                s, actor, "api_token.revoke", at=now, target_type="api_token",
                target_id=row.id, name=row.name, prefix=row.prefix,
            )  # fmt: skip
        return True

    def list(self, actor: Actor) -> list[TokenInfo]:
        """The organisation's tokens, newest first (revoked ones too)."""
        org_id = actor.require(Role.ADMIN)
        with self.factory() as s:
            rows = s.scalars(
                sa.select(ApiToken)
                .where(ApiToken.org_id == org_id)
                .order_by(ApiToken.created_at.desc(), ApiToken.id)
            )
            return [_info(r) for r in rows]

    def authenticate(self, secret: str) -> TokenInfo | None:
        """The active token with this secret (its last use recorded), else None."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        digest = hash_token(secret)
        now = self.clock()
        with self.factory.begin() as s:
            row = s.scalars(sa.select(ApiToken).where(ApiToken.token_hash == digest)).first()
            if row is None or row.revoked_at is not None:
                return None
            if not secrets.compare_digest(row.token_hash, digest):
                return None
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
                row.last_used_at = now
            return _info(row)

"""Organisations, users and logins (``ivr org``/``ivr user`` and the web UI's login)."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor, NotFound
from ivr.accounts.passwords import (
    check_strength,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from ivr.clock import Clock
from ivr.config import WebSettings
from ivr.store.db import reader_for
from ivr.store.org_models import (
    AuditEntry,
    LoginFailure,
    Membership,
    Organisation,
    Role,
    User,
)

LANGUAGES = ("fi", "sv", "en")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,252}\.[^@\s.]{1,63}$")


class AccountError(ValueError):
    """Bad input (names the field) or a conflict such as a taken name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class LoginRefused(Exception):
    """A login that did not succeed. ``limited`` says the rate limit stopped it (then
    ``retry_after`` seconds until the next try is accepted)."""

    def __init__(self, limited: bool = False, retry_after: int = 0) -> None:
        super().__init__("too many failed logins" if limited else "wrong e-mail or password")
        self.limited = limited
        self.retry_after = retry_after


@dataclass(frozen=True)
class OrgRole:
    org_id: str
    org_name: str
    role: Role
    timezone: str
    language: str


@dataclass(frozen=True)
class LoggedIn:
    user_id: str
    email: str
    name: str
    language: str | None
    orgs: tuple[OrgRole, ...]
    session_version: int = 0


def normalise_email(email: str) -> str:
    clean = email.strip().lower()
    if not _EMAIL.match(clean):
        raise AccountError("email", f"{email!r} is not an e-mail address")
    return clean


class Accounts:
    def __init__(
        self, factory: sessionmaker[Session], clock: Clock, web: WebSettings | None = None
    ) -> None:
        self.factory = factory
        self.reader = reader_for(factory)  # reads take no write lock
        self.clock = clock
        self.web = web or WebSettings()

    # ------------------------------------------------------------------ organisations
    def add_org(
        self, actor: Actor, name: str, *, timezone: str = "Europe/Helsinki", language: str = "fi"
    ) -> Organisation:
        clean = name.strip()
        if not 1 <= len(clean) <= 100:
            raise AccountError("name", "give 1 to 100 characters")
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise AccountError("timezone", f"{timezone!r} is not a time zone") from None
        if language not in LANGUAGES:
            raise AccountError("language", f"{language!r} is not one of fi, sv, en")
        with self.factory.begin() as s:
            if s.scalar(sa.select(Organisation.id).where(Organisation.name == clean)):
                raise AccountError("name", f"an organisation named {clean!r} exists already")
            org = Organisation(
                name=clean, timezone=timezone, language=language, created_at=self.clock()
            )
            s.add(org)
            s.flush()
            audit.record(
                s, actor, "org.create", at=self.clock(), org_id=org.id,
                target_type="organisation", target_id=org.id, name=clean,
            )  # fmt: skip
            s.expunge(org)
        return org

    def org_by_name(self, name: str) -> Organisation:
        with self.reader() as s:
            org = s.scalars(sa.select(Organisation).where(Organisation.name == name)).first()
            if org is None:
                org = s.get(Organisation, name)
            if org is None:
                raise NotFound(f"no organisation named {name!r}")
            s.expunge(org)
            return org

    def orgs(self) -> list[Organisation]:
        with self.reader() as s:
            found = list(s.scalars(sa.select(Organisation).order_by(Organisation.name)))
            s.expunge_all()
            return found

    # ------------------------------------------------------------------ users
    def add_user(
        self,
        actor: Actor,
        email: str,
        org_id: str,
        role: Role | str,
        *,
        name: str = "",
        password: str | None = None,
    ) -> tuple[User, str]:
        """Add a user to an organisation with a role (or give an existing user a role in
        another organisation). Returns the user and the password: generated unless given,
        empty when the user existed already (their password is not changed)."""
        actor.require(Role.ADMIN, org_id)
        clean = normalise_email(email)
        try:
            role = Role(role)
        except ValueError:
            raise AccountError("role", f"{role!r} is not one of admin, manager, reviewer") from None
        if password is not None and (weak := check_strength(password)):
            raise AccountError("password", weak)
        with self.factory.begin() as s:
            if s.get(Organisation, org_id) is None:
                raise NotFound("no such organisation")
            user = s.scalars(sa.select(User).where(User.email == clean)).first()
            given = ""
            if user is None:
                given = password or generate_password()
                user = User(
                    email=clean,
                    name=name.strip()[:100],
                    password_hash=hash_password(given),
                    created_at=self.clock(),
                )
                s.add(user)
                s.flush()
            member = s.get(Membership, (user.id, org_id))
            if member is not None:
                raise AccountError("email", f"{clean} is already a member ({member.role.value})")
            s.add(Membership(user_id=user.id, org_id=org_id, role=role, created_at=self.clock()))
            audit.record(
                s, actor, "user.add", at=self.clock(), org_id=org_id,
                target_type="user", target_id=user.id, email=clean, role=role.value,
            )  # fmt: skip
            s.flush()
            s.expunge(user)
        return user, given

    def set_role(self, actor: Actor, user_id: str, role: Role | str) -> None:
        org_id = actor.require(Role.ADMIN)
        try:
            role = Role(role)
        except ValueError:
            raise AccountError("role", f"{role!r} is not one of admin, manager, reviewer") from None
        if user_id == actor.user_id:
            # An admin cannot demote themselves: the organisation keeps an admin.
            raise AccountError("role", "you cannot change your own role")
        with self.factory.begin() as s:
            member = s.get(Membership, (user_id, org_id))
            if member is None:
                raise NotFound("no such user in this organisation")
            before = member.role
            member.role = role
            audit.record(
                s, actor, "user.role", at=self.clock(), target_type="user",
                target_id=user_id, before=before.value, after=role.value,
            )  # fmt: skip

    def remove_member(self, actor: Actor, user_id: str) -> None:
        org_id = actor.require(Role.ADMIN)
        if user_id == actor.user_id:
            raise AccountError("user", "you cannot remove yourself")
        with self.factory.begin() as s:
            member = s.get(Membership, (user_id, org_id))
            if member is None:
                raise NotFound("no such user in this organisation")
            s.delete(member)
            audit.record(
                s, actor, "user.remove", at=self.clock(), target_type="user", target_id=user_id
            )

    def members(self, actor: Actor) -> list[tuple[User, Role]]:
        org_id = actor.require(Role.ADMIN)
        with self.reader() as s:
            rows = s.execute(
                sa.select(User, Membership.role)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.org_id == org_id)
                .order_by(User.email)
            ).all()
            s.expunge_all()
            return [(user, role) for user, role in rows]

    def member(self, actor: Actor, user_id: str) -> tuple[User, Role]:
        """One member of the actor's organisation; NotFound for anyone else."""
        org_id = actor.require(Role.ADMIN)
        with self.reader() as s:
            row = s.execute(
                sa.select(User, Membership.role)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.org_id == org_id, User.id == user_id)
            ).first()
            if row is None:
                raise NotFound("no such user in this organisation")
            s.expunge_all()
            return row[0], row[1]

    def audit_log(
        self, actor: Actor, *, before_id: int | None = None, limit: int = 50
    ) -> tuple[list[AuditEntry], dict[tuple[str, str], str]]:
        """The actor's organisation's audit log, newest first (keyset pagination: entries
        older than ``before_id``), and readable names of the targets (user e-mails,
        campaign and flow names) keyed by ``(target_type, target_id)``."""
        org_id = actor.require(Role.ADMIN)
        with self.reader() as s:
            found = audit.entries(s, org_id, before_id=before_id, limit=limit)
            s.expunge_all()
            return found, audit.target_names(s, org_id, found)

    def set_language(self, user_id: str, language: str | None) -> None:
        if language is not None and language not in LANGUAGES:
            raise AccountError("language", f"{language!r} is not one of fi, sv, en")
        with self.factory.begin() as s:
            user = s.get(User, user_id)
            if user is None:
                raise NotFound("no such user")
            user.language = language

    def change_password(self, user_id: str, current: str, new: str) -> None:
        if weak := check_strength(new):
            raise AccountError("new_password", weak)
        with self.factory.begin() as s:
            user = s.get(User, user_id)
            if user is None:
                raise NotFound("no such user")
            if not verify_password(user.password_hash, current):
                raise AccountError("current_password", "wrong password")
            user.password_hash = hash_password(new)
            user.session_version += 1  # other sessions of this user end
            actor = Actor(actor=user.email, user_id=user.id)
            audit.record(
                s, actor, "user.password", at=self.clock(), target_type="user", target_id=user.id
            )

    # ------------------------------------------------------------------ logins
    def _retry_after(self, s: Session, email: str, address: str) -> int:
        """Seconds until a login may be tried again; 0 if the limits allow it now."""
        now = self.clock()
        since = now - timedelta(minutes=self.web.login_window_minutes)
        wait = 0
        for column, key, limit in (
            (LoginFailure.account, email, self.web.login_failures_per_account),
            (LoginFailure.address, address, self.web.login_failures_per_address),
        ):
            times = list(
                s.scalars(
                    sa.select(LoginFailure.at)
                    .where(column == key, LoginFailure.at > since)
                    .order_by(LoginFailure.at.desc())
                    .limit(limit)
                )
            )
            if len(times) >= limit:
                free_at = times[-1] + timedelta(minutes=self.web.login_window_minutes)
                wait = max(wait, int((free_at - now).total_seconds()) + 1)
        return wait

    def login(self, email: str, password: str, address: str) -> LoggedIn:
        """Check a login; raises LoginRefused (a wrong password and an unknown e-mail read
        the same). Failures count against the account and the address."""
        clean = email.strip().lower()[:254]
        address = address[:64]
        with self.factory.begin() as s:
            # Forget this account's and address's failures older than the window (indexed;
            # keeps the table small under a long guessing attack).
            since = self.clock() - timedelta(minutes=self.web.login_window_minutes)
            for column, key in ((LoginFailure.account, clean), (LoginFailure.address, address)):
                s.execute(sa.delete(LoginFailure).where(column == key, LoginFailure.at <= since))
            wait = self._retry_after(s, clean, address)
            if wait:
                raise LoginRefused(limited=True, retry_after=wait)
            user = s.scalars(sa.select(User).where(User.email == clean)).first()
            ok = verify_password(user.password_hash if user else None, password)
            if user is None or not ok or user.disabled:
                # Kept although the login is refused: committed before the raise below.
                s.add(LoginFailure(account=clean, address=address, at=self.clock()))
                user_id = None
            else:
                user_id = user.id
                if needs_rehash(user.password_hash):
                    user.password_hash = hash_password(password)
                user.last_login_at = self.clock()
                actor = Actor(actor=user.email, user_id=user.id, address=address)
                for org_id in self._org_ids(s, user.id):
                    audit.record(
                        s, actor, "user.login", at=self.clock(), org_id=org_id,
                        target_type="user", target_id=user.id,
                    )  # fmt: skip
        who = self.logged_in(user_id) if user_id else None
        if who is None:
            raise LoginRefused()
        return who

    @staticmethod
    def _org_ids(s: Session, user_id: str) -> list[str]:
        return list(s.scalars(sa.select(Membership.org_id).where(Membership.user_id == user_id)))

    def logged_in(self, user_id: str) -> LoggedIn | None:
        """The user and their organisations and roles, read afresh (a role taken away or an
        account disabled takes effect on the next request); None if gone or disabled."""
        with self.reader() as s:
            user = s.get(User, user_id)
            if user is None or user.disabled:
                return None
            rows = s.execute(
                sa.select(Organisation, Membership.role)
                .join(Membership, Membership.org_id == Organisation.id)
                .where(Membership.user_id == user_id)
                .order_by(Organisation.name)
            ).all()
            return LoggedIn(
                user_id=user.id,
                email=user.email,
                name=user.name,
                language=user.language,
                session_version=user.session_version,
                orgs=tuple(
                    OrgRole(org.id, org.name, role, org.timezone, org.language)
                    for org, role in rows
                ),
            )

    def end_sessions(self, user_id: str) -> None:
        """Log the user out everywhere: every session cookie issued so far stops working."""
        with self.factory.begin() as s:
            user = s.get(User, user_id)
            if user is not None:
                user.session_version += 1

    def prune_failures(self) -> int:
        """Forget failed logins older than the window (the web app calls it now and then)."""
        since = self.clock() - timedelta(minutes=self.web.login_window_minutes)
        with self.factory.begin() as s:
            result = s.execute(sa.delete(LoginFailure).where(LoginFailure.at <= since))
            return int(getattr(result, "rowcount", 0) or 0)

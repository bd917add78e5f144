"""The delivery worker: fans each outbox event out to the enabled endpoints of its
organisation subscribed to it, POSTs it signed, and retries failures.

At least once: a delivery is marked delivered only after a 2xx answer, so a worker killed
mid-POST leaves it pending and it is sent again (the receiver deduplicates by
``webhook-id``, which stays the same on every try). A worker claims a delivery for one try
(``claimed_by`` host:pid, until ``claim_expires_at``); a worker starting on the same host
releases the claims of its dead predecessors at once, others expire after the lease.

Retry schedule (after the first try fails; each delay ±20 % jitter):
5 s, 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, 12 h, 14 h, 14 h, 14 h — twelve tries over about
71.6 hours (~3 days); when the last fails the delivery is dead-lettered (the UI can re-send
it). An endpoint whose tries have all failed for ``[webhooks] disable_after_hours`` (72) is
disabled and its organisation's admins get an e-mail.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.client import HTTPException

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr import mail
from ivr.clock import Clock
from ivr.config import SmtpSettings, WebhookSettings
from ivr.store.org_models import Membership, Organisation, Role, User
from ivr.store.webhook_models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from ivr.webhooks import guard, signing

log = logging.getLogger(__name__)

SCHEDULE: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s) for s in (5, 60, 300, 1800, 7200, 18000, 36000, 43200, 50400, 50400, 50400)
)
TRIES = len(SCHEDULE) + 1
JITTER = 0.2


def retry_delay(failed_tries: int, rng: random.Random) -> timedelta | None:
    """The wait after the ``failed_tries``-th failed try; None: dead-letter it."""
    if failed_tries >= TRIES:
        return None
    base = SCHEDULE[failed_tries - 1]
    return base * (1 + rng.uniform(-JITTER, JITTER))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Job:
    delivery_id: int
    endpoint_id: str
    url: str
    secrets: tuple[str, ...]
    msg_id: str
    body: bytes


@dataclass(frozen=True)
class Result:
    status: int | None
    ok: bool
    error: str | None
    snippet: str
    duration_ms: int


class Deliverer:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock,
        settings: WebhookSettings,
        smtp: SmtpSettings,
        *,
        rng: random.Random | None = None,
        post: Callable[..., guard.Response] = guard.post,
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.settings = settings
        self.smtp = smtp
        self.rng = rng or random.Random()
        self.me = worker_id()
        self._post = post
        self.lease = timedelta(seconds=settings.timeout_seconds * 2 + 30)

    # ------------------------------------------------------------------ claims
    def release_dead_claims(self) -> int:
        """Release the claims of workers on this host that are no longer running."""
        host = self.me.rsplit(":", 1)[0]
        released = 0
        with self.factory.begin() as s:
            rows = s.execute(
                sa.select(WebhookDelivery.id, WebhookDelivery.claimed_by).where(
                    WebhookDelivery.state == DeliveryState.PENDING,
                    WebhookDelivery.claimed_by.like(f"{host}:%"),
                )
            ).all()
            for delivery_id, owner in rows:
                pid = str(owner).rsplit(":", 1)[1]
                if pid.isdigit() and not _alive(int(pid)):
                    s.execute(
                        sa.update(WebhookDelivery)
                        .where(WebhookDelivery.id == delivery_id)
                        .values(claimed_by=None, claim_expires_at=None)
                    )
                    released += 1
        return released

    # ------------------------------------------------------------------ fan-out
    def fan_out(self, limit: int = 500) -> int:
        """Deliveries for events not yet fanned out, oldest first; how many events."""
        now = self.clock()
        with self.factory.begin() as s:
            events = s.execute(
                sa.select(WebhookEvent.id, WebhookEvent.org_id, WebhookEvent.event_type)
                .where(WebhookEvent.fanned_out_at.is_(None))
                .order_by(WebhookEvent.id)
                .limit(limit)
            ).all()
            if not events:
                return 0
            orgs = {e.org_id for e in events}
            endpoints = s.execute(
                sa.select(WebhookEndpoint.id, WebhookEndpoint.org_id, WebhookEndpoint.events).where(
                    WebhookEndpoint.org_id.in_(orgs), WebhookEndpoint.enabled.is_(True)
                )
            ).all()
            subscribed = [(e.id, e.org_id, set(json.loads(e.events))) for e in endpoints]
            done = 0
            for event in events:
                taken = s.execute(
                    sa.update(WebhookEvent)
                    .where(WebhookEvent.id == event.id, WebhookEvent.fanned_out_at.is_(None))
                    .values(fanned_out_at=now)
                )
                if not taken.rowcount:  # type: ignore[attr-defined]
                    continue  # another worker has it
                done += 1
                rows = [
                    {
                        "event_id": event.id,
                        "endpoint_id": endpoint_id,
                        "org_id": org_id,
                        "state": DeliveryState.PENDING,
                        "tries": 0,
                        "next_at": now,
                        "created_at": now,
                    }
                    for endpoint_id, org_id, kinds in subscribed
                    if org_id == event.org_id and event.event_type in kinds
                ]
                if rows:
                    s.execute(sa.insert(WebhookDelivery), rows)
            return done

    # ------------------------------------------------------------------ claiming
    def claim(self, limit: int = 50) -> list[Job]:
        now = self.clock()
        jobs: list[Job] = []
        free = sa.or_(
            WebhookDelivery.claim_expires_at.is_(None), WebhookDelivery.claim_expires_at <= now
        )
        with self.factory.begin() as s:
            rows = s.execute(
                sa.select(
                    WebhookDelivery.id,
                    WebhookEndpoint.id.label("endpoint_id"),
                    WebhookEndpoint.url,
                    WebhookEndpoint.secret,
                    WebhookEndpoint.previous_secret,
                    WebhookEndpoint.previous_expires_at,
                    WebhookEvent.msg_id,
                    WebhookEvent.payload,
                )
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                .where(
                    WebhookDelivery.state == DeliveryState.PENDING,
                    WebhookDelivery.next_at <= now,
                    WebhookEndpoint.enabled.is_(True),
                    free,
                )
                .order_by(WebhookDelivery.next_at, WebhookDelivery.id)
                .limit(limit)
            ).all()
            for row in rows:
                taken = s.execute(
                    sa.update(WebhookDelivery)
                    .where(WebhookDelivery.id == row.id, free)
                    .values(claimed_by=self.me, claim_expires_at=now + self.lease)
                )
                if not taken.rowcount:  # type: ignore[attr-defined]
                    continue
                secrets = [row.secret]
                if (
                    row.previous_secret
                    and row.previous_expires_at
                    and row.previous_expires_at > now
                ):
                    secrets.append(row.previous_secret)
                jobs.append(
                    Job(row.id, row.endpoint_id, row.url, tuple(secrets), row.msg_id,
                        row.payload.encode())
                )  # fmt: skip
        return jobs

    # ------------------------------------------------------------------ one try
    def attempt(self, job: Job) -> Result:
        headers = signing.headers(job.msg_id, self.clock(), job.body, job.secrets)
        started = time.monotonic()
        status: int | None = None
        snippet = ""
        error: str | None = None
        try:
            response = self._post(
                job.url,
                job.body,
                headers,
                timeout=self.settings.timeout_seconds,
                allow_private=self.settings.allow_private,
            )
            status, snippet = response.status, response.snippet
            if not 200 <= status < 300:
                error = f"the endpoint answered {status}"
        except guard.AddressRefused as exc:
            error = str(exc)
        except TimeoutError:
            error = f"no answer within {self.settings.timeout_seconds:g} s"
        except (OSError, HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        duration = int((time.monotonic() - started) * 1000)
        return Result(status, error is None, error and error[:300], snippet, duration)

    def record(self, job: Job, result: Result) -> str | None:
        """Store the try and what follows; the endpoint id when it has just been disabled."""
        now = self.clock()
        disabled: str | None = None
        with self.factory.begin() as s:
            delivery = s.get(WebhookDelivery, job.delivery_id, with_for_update=True)
            if delivery is None or delivery.state is not DeliveryState.PENDING:
                return None
            s.add(
                WebhookAttempt(
                    delivery_id=job.delivery_id, at=now, status_code=result.status,
                    ok=result.ok, error=result.error, response_snippet=result.snippet,
                    duration_ms=result.duration_ms,
                )
            )  # fmt: skip
            delivery.tries += 1
            delivery.last_status = result.status
            delivery.claimed_by = None
            delivery.claim_expires_at = None
            endpoint = s.get(WebhookEndpoint, job.endpoint_id, with_for_update=True)
            if result.ok:
                delivery.state = DeliveryState.DELIVERED
                delivery.finished_at = now
                if endpoint is not None:
                    endpoint.failing_since = None
                return None
            delay = retry_delay(delivery.tries, self.rng)
            if delay is None:
                delivery.state = DeliveryState.DEAD
                delivery.finished_at = now
            else:
                delivery.next_at = now + delay
            if endpoint is not None and endpoint.enabled:
                endpoint.failing_since = endpoint.failing_since or now
                limit = timedelta(hours=self.settings.disable_after_hours)
                if now - endpoint.failing_since >= limit:
                    endpoint.enabled = False
                    endpoint.disabled_reason = (
                        f"every delivery failed for {self.settings.disable_after_hours} hours "
                        f"(last: {result.error})"
                    )[:300]
                    endpoint.updated_at = now
                    disabled = endpoint.id
        return disabled

    def deliver(self, job: Job) -> Result:
        result = self.attempt(job)
        disabled = self.record(job, result)
        if disabled is not None:
            self.notify_disabled(disabled)
        return result

    # ------------------------------------------------------------------ e-mail
    def notify_disabled(self, endpoint_id: str) -> None:
        with self.factory() as s:
            row = s.execute(
                sa.select(
                    WebhookEndpoint.url,
                    WebhookEndpoint.disabled_reason,
                    Organisation.name,
                    Organisation.id,
                )
                .join(Organisation, Organisation.id == WebhookEndpoint.org_id)
                .where(WebhookEndpoint.id == endpoint_id)
            ).one()
            admins = list(
                s.scalars(
                    sa.select(User.email)
                    .join(Membership, Membership.user_id == User.id)
                    .where(
                        Membership.org_id == row.id,
                        Membership.role == Role.ADMIN,
                        User.disabled.is_(False),
                    )
                    .order_by(User.email)
                )
            )
        text = (
            f"The webhook endpoint {row.url} of {row.name} has been disabled: "
            f"{row.disabled_reason}.\n\nEvents are kept. When the receiver works again, "
            "enable the endpoint on the Webhooks page; the deliveries waiting are then sent "
            "and dead-lettered ones can be re-sent.\n"
        )
        try:
            mail.send_text(self.smtp, admins, f"Webhook endpoint disabled: {row.url}", text)
        except mail.MailError as exc:
            log.warning(
                "webhook endpoint %s disabled; e-mail to admins failed: %s", endpoint_id, exc
            )

    # ------------------------------------------------------------------ loops
    def run_once(self, pool: ThreadPoolExecutor | None = None) -> int:
        """Fan out, then send every due delivery; how many tries were made."""
        self.fan_out()
        jobs = self.claim()
        if pool is None or len(jobs) < 2:
            for job in jobs:
                self.deliver(job)
        else:
            list(pool.map(self.deliver, jobs))
        return len(jobs)

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set: deliver what is due, then wait ``poll_seconds``."""
        self.release_dead_claims()
        with ThreadPoolExecutor(self.settings.concurrency, "webhook") as pool:
            while not stop.is_set():
                try:
                    if self.run_once(pool):
                        continue
                except Exception:  # a database outage must not end the worker
                    log.exception("webhook delivery round failed; trying again")
                stop.wait(self.settings.poll_seconds)


def start_in_background(
    factory: sessionmaker[Session], clock: Clock, settings: WebhookSettings, smtp: SmtpSettings
) -> Callable[[], None]:
    """Run a Deliverer in a daemon thread (beside ``ivr worker``'s job consumer); returns
    the function that stops it."""
    stop = threading.Event()
    deliverer = Deliverer(factory, clock, settings, smtp)
    thread = threading.Thread(target=deliverer.run, args=(stop,), name="webhooks", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=settings.timeout_seconds + 5)

    return halt


def due_at(factory: sessionmaker[Session]) -> datetime | None:
    """When the next pending delivery is due (None: none is)."""
    with factory() as s:
        return s.scalar(
            sa.select(sa.func.min(WebhookDelivery.next_at)).where(
                WebhookDelivery.state == DeliveryState.PENDING
            )
        )

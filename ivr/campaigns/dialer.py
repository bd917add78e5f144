"""The dialer: runs in the telephony worker and places the calls of running campaigns.

Each pass: claim due attempts (never the same attempt twice, even across workers), check
the rules *at dial time* (calling window and holidays, do-not-call list, unallocated
numbers, attempts cap, spacing, the cross-campaign daily cap), originate within the pacing
limits (calls per second and concurrent calls, per Asterisk node), and when a call ends
record its precise outcome and schedule the retry the rules allow. A campaign that cannot
dial says why in ``status_reason``.

Crash safety: an attempt is marked originated (with its channel id) before the call is
placed, and the call row names its attempt; at start the dialer reconciles the attempts it
left in flight from the call records (or puts back the ones it never placed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.campaigns import rules
from ivr.clock import Clock
from ivr.flows.loader import FlowError, parse_flow
from ivr.flows.model import Flow
from ivr.outcome import Outcome, attempt_outcome
from ivr.store import campaigns as cstore
from ivr.store import repo
from ivr.store.models import Attempt, Campaign, CampaignStatus
from ivr.store.writer import DbWriter
from ivr.telephony.service import OutboundCall, TelephonyService

log = logging.getLogger(__name__)

DIALER_FAILED = "the dialer failed"
ASTERISK_DOWN = "Asterisk unreachable"
HOLD_AFTER = 3  # calls not placed in a row before the campaign holds off
TRUNK_FAILING = "calls failing at the trunk"


def policy_of(campaign: Campaign) -> rules.CallingPolicy:
    retry = dict(rules.CallingPolicy().retry_after)
    failed = timedelta(minutes=campaign.retry_failed_minutes)
    retry |= {
        Outcome.BUSY: timedelta(minutes=campaign.retry_busy_minutes),
        Outcome.NO_ANSWER: timedelta(minutes=campaign.retry_no_answer_minutes),
        Outcome.FAILED: failed,
        Outcome.INTERRUPTED: failed,  # a technical failure too (worker or Asterisk restarted)
    }
    return rules.CallingPolicy(
        timezone=campaign.timezone,
        windows=rules.parse_windows(campaign.windows),
        allow_holidays=campaign.allow_holidays,
        max_attempts=campaign.max_attempts,
        retry_after=retry,
        min_gap=min(rules.CallingPolicy().min_gap, min(retry.values())),
        cross_campaign_daily_cap=campaign.cross_campaign_daily_cap,
    )


def frozen_flow(campaign: Campaign) -> Flow:
    """The campaign's flow as it was when the campaign started."""
    if campaign.flow_snapshot is None:
        raise FlowError([], source=campaign.flow_path)
    return parse_flow(campaign.flow_snapshot, source=campaign.flow_path)


@dataclass
class Running:
    """A running campaign as this worker dials it."""

    id: str
    name: str
    flow: Flow
    policy: rules.CallingPolicy
    pacer: rules.Pacer
    caller_id: str | None
    default_language: str
    in_flight: set[str] = field(default_factory=set)  # attempt ids
    reason: str | None = None
    # Calls that could not be placed (Asterisk or the trunk refusing them): after
    # HOLD_AFTER failures in a row no claims before this (monotonic) time; the back-off
    # doubles with each hold while it goes on (not with each of the calls that were
    # already on their way), and any call that gets through ends it.
    hold_until: float = 0.0
    backoff: float = 0.0
    failures_in_row: int = 0
    # Why the last attempts were put off (a dial-time rule) or retried: said in the status
    # while the campaign waits.
    waiting_why: str | None = None


class Dialer:
    def __init__(
        self,
        service: TelephonyService,
        factory: sessionmaker[Session],
        node: str,
        *,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        poll_seconds: float = 0.2,
        refresh_seconds: float = 2.0,
        ring_timeout: int = 30,
        prerender: Callable[[Flow], object] | None = None,
        writer: DbWriter | None = None,
        max_placing: int = 64,
        node_timeout_seconds: float | None = None,
    ) -> None:
        self.service = service
        self.factory = factory
        self.node = node
        self.clock = clock
        self.monotonic = monotonic
        self.poll_seconds = poll_seconds
        self.refresh_seconds = refresh_seconds
        self.ring_timeout = ring_timeout
        self.prerender = prerender
        # The process's database writer (shared with the call store); without one, each
        # piece of work runs in a transaction of its own in a thread.
        self.writer = writer
        # Originations awaiting Asterisk's answer at most; more claimed calls wait.
        self.max_placing = max_placing
        self._placing = 0
        self.campaigns: dict[str, Running] = {}
        self._task: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._last_refresh = -1e9
        self.placed = 0  # calls placed by this dialer (for status and benchmarks)
        self.outage_since: datetime | None = None  # Asterisk unreachable since (the clock)
        # Set by the cluster heartbeat (ivr/cluster/heartbeat.py) from the operator's flag
        # (``ivr cluster drain``): a draining node claims no new attempts; its calls finish.
        self.draining = False
        self.last_error: tuple[datetime, str] | None = None  # (when, what): the last failure
        # [cluster] node_timeout_seconds: at each refresh, the attempts and calls of a node
        # silent this long are taken over (ivr.campaigns.takeover); None: never.
        self.node_timeout_seconds = node_timeout_seconds
        self.taken_over = 0  # attempts taken over from nodes that were down

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self._db(self._reconcile)
        self._task = asyncio.create_task(self._loop(), name="dialer")

    @property
    def running(self) -> bool:
        """Whether this dialer's loop was started (``ivr telephony`` with dialling), and not
        ended by ``stop_dialling``."""
        return self._task is not None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._calls):
            task.cancel()

    async def _db(self, work: Callable[[Session], object]) -> object:
        if self.writer is not None:
            return await self.writer.run(work)

        def job() -> object:
            with self.factory.begin() as s:
                return work(s)

        return await asyncio.to_thread(job)

    # ------------------------------------------------------------------ reconcile
    def _reconcile(self, s: Session) -> None:
        """Attempts this node left in flight when it stopped: settle each exactly once.
        Adopted by a guarded UPDATE: those another node took over while this one was down
        are not this node's any more, and one being taken over right now goes to one node."""
        for attempt in cstore.adopt_dialing(s, owner=self.node, node=self.node):
            self.settle_stale(s, attempt, "reconciled after a restart")

    def settle_stale(self, s: Session, attempt: Attempt, detail: str) -> None:
        """Settle an attempt left in ``dialing`` by a node that stopped (this one, or one
        that is down): from its call record, or back to the queue if it was never placed."""
        if attempt.channel_id is None:
            cstore.release_attempt(s, attempt.id)  # claimed, never placed
            return
        call = repo.call_of_attempt(s, attempt.id)
        if call is None:
            # Marked originated, but the call row (written before the originate) is
            # missing: the call was never placed. It goes back to the queue unspent.
            cstore.return_unplaced(s, attempt.id)
            return
        status = call.status
        if status is Outcome.ACTIVE:
            # The worker died mid-call; the service has hung the channel up (or, for a
            # node that is down, its Asterisk went with it or hangs up when it is back).
            repo.end_call(s, call.id, Outcome.INTERRUPTED, at=self.clock())
            status = Outcome.INTERRUPTED
        self._settle(
            s,
            attempt,
            attempt_outcome(status),
            call_id=call.id,
            answered_at=call.answered_at,
            ended_at=call.ended_at or self.clock(),
            cause=call.hangup_cause,
            detail=detail,
        )

    # ------------------------------------------------------------------ the loop
    async def _loop(self) -> None:
        while True:
            try:
                if self.monotonic() - self._last_refresh >= self.refresh_seconds:
                    await self._refresh()
                await self._dial_pass()
                for run in self.campaigns.values():
                    if run.reason and run.reason.startswith(DIALER_FAILED):
                        run.reason = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep dialing: one bad pass must not stop the campaigns
                log.exception("dialer pass failed")
                self.last_error = (self.clock(), f"{DIALER_FAILED}: {type(exc).__name__}: {exc}")
                for run in self.campaigns.values():  # said in the status, never silently idle
                    run.reason = f"{DIALER_FAILED}: {type(exc).__name__}: {exc}"[:300]
                await asyncio.sleep(1.0)
            await asyncio.sleep(self.poll_seconds)

    async def _refresh(self) -> None:
        self._last_refresh = self.monotonic()
        campaigns = await self._db(self._running_campaigns)
        assert isinstance(campaigns, list)
        running_ids = set()
        for campaign in campaigns:
            running_ids.add(campaign.id)
            if campaign.id not in self.campaigns:
                try:
                    flow = frozen_flow(campaign)
                    policy = policy_of(campaign)
                except (FlowError, ValueError) as exc:
                    problem = f"cannot dial: {exc}"
                    log.error("campaign %s paused: %s", campaign.name, problem)
                    await self._db(self._pause_work(campaign.id, problem))
                    continue
                if self.prerender is not None:
                    try:
                        await asyncio.to_thread(self.prerender, flow)
                    except Exception as exc:  # noqa: BLE001 - this campaign only, said below
                        # A missing recording or a voice that fails stops this campaign,
                        # with the reason in its status; the others go on dialling.
                        problem = f"cannot dial: its prompts cannot be rendered: {exc}"[:300]
                        log.exception("campaign %s paused: %s", campaign.name, problem)
                        await self._db(self._pause_work(campaign.id, problem))
                        continue
                pacer = rules.Pacer(
                    campaign.calls_per_second,
                    max(1, int(campaign.calls_per_second)),
                    campaign.max_concurrent,
                )
                self.campaigns[campaign.id] = Running(
                    campaign.id,
                    campaign.name,
                    flow,
                    policy,
                    pacer,
                    campaign.caller_id,
                    campaign.default_language,
                )
                log.info("dialing campaign %s", campaign.name)
        for cid in list(self.campaigns):
            if cid not in running_ids and not self.campaigns[cid].in_flight:
                del self.campaigns[cid]
        await self._db(lambda s: self._update_reasons(s, running_ids))
        if self.node_timeout_seconds is not None:
            from ivr.campaigns.takeover import take_over

            try:
                await self._db(functools.partial(take_over, self))
            except Exception:  # noqa: BLE001 - the next refresh tries again; dialling goes on
                log.exception("taking over the calls of a node that is down failed")

    def _pause_work(self, campaign_id: str, problem: str) -> Callable[[Session], object]:
        at = self.clock()
        return lambda s: cstore.set_status(s, campaign_id, CampaignStatus.PAUSED, problem, at=at)

    def _claim_in(self, run: Running, limit: int, s: Session) -> list[tuple[Attempt, str]]:
        return self._claim(s, run, limit)

    def _running_campaigns(self, s: Session) -> list[Campaign]:
        rows = cstore.running_campaigns(s)
        s.expunge_all()
        return rows

    def _update_reasons(self, s: Session, running_ids: set[str]) -> None:
        """Say why a running campaign is idle; complete it when nothing is left."""
        now = self.clock()
        for cid in running_ids:
            run = self.campaigns.get(cid)
            if run is None:
                continue
            due_now, next_due, left = cstore.due_summary(s, cid, now)
            reason: str | None
            if not left:
                cstore.set_status(
                    s,
                    cid,
                    CampaignStatus.COMPLETED,
                    "every contact has been called as the rules allow",
                    at=now,
                )
                continue
            window = rules.window_reason(run.policy, now)
            if window is not None:
                start = rules.next_window_start(run.policy, now)
                local = start.astimezone(ZoneInfo(run.policy.timezone)) if start else None
                reason = f"{window}; next calls at " + (
                    local.strftime("%a %d.%m. %H:%M") if local else "never"
                )
            elif run.reason and run.reason.startswith((ASTERISK_DOWN, TRUNK_FAILING)):
                reason = run.reason
            elif not due_now and not run.in_flight and next_due is not None:
                due = next_due if next_due.tzinfo else next_due.replace(tzinfo=UTC)
                local = due.astimezone(ZoneInfo(run.policy.timezone))
                why = f" ({run.waiting_why})" if run.waiting_why else ""
                reason = f"waiting for retries{why}; next at {local.strftime('%a %d.%m. %H:%M')}"
            else:
                reason = run.reason  # dialing (None), or a problem the last pass met
            campaign = s.get(Campaign, cid)
            if campaign is not None and campaign.status_reason != reason:
                campaign.status_reason = reason

    def _asterisk_reachable(self) -> bool:
        """False while the ARI connection is down: nothing is claimed then, and the
        campaigns say since when (no resident's attempt is spent on an outage)."""
        down = self.service.connection_lost.is_set() or not self.service.ari.connected.is_set()
        if not down:
            if self.outage_since is not None:
                log.info("Asterisk reachable again: dialling resumes")
                self.outage_since = None
                for run in self.campaigns.values():
                    if run.reason and run.reason.startswith(ASTERISK_DOWN):
                        run.reason = None
            return True
        if self.outage_since is None:
            self.outage_since = self.clock()
            log.warning("Asterisk unreachable: dialling stops until it is back")
        for run in self.campaigns.values():
            since = self.outage_since.astimezone(ZoneInfo(run.policy.timezone))
            run.reason = f"{ASTERISK_DOWN} since {since.strftime('%H:%M')}"
        return False

    async def _dial_pass(self) -> None:
        if not self._asterisk_reachable():
            return
        if self.draining:  # the node is draining: no new claims (the heartbeat reads the flag)
            return
        for run in list(self.campaigns.values()):
            if self.monotonic() < run.hold_until:
                continue
            room = min(
                run.pacer.available(self.monotonic(), len(run.in_flight)),
                self.max_placing - self._placing,
            )
            if room <= 0:
                continue
            claimed = await self._db(functools.partial(self._claim_in, run, room))
            assert isinstance(claimed, list)
            for attempt, contact_language in claimed:
                # Placed side by side: an originate that Asterisk answers slowly must not
                # hold up the next ones (the pacer and max_placing bound how many).
                run.pacer.take(self.monotonic(), len(run.in_flight))
                run.in_flight.add(attempt.id)
                self._placing += 1
                task = asyncio.create_task(
                    self._place(run, attempt, contact_language), name=f"place-{attempt.id}"
                )
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)

    def _claim(self, s: Session, run: Running, limit: int) -> list[tuple[Attempt, str]]:
        now = self.clock()
        if rules.window_reason(run.policy, now) is not None:
            return []  # nothing is dialled outside the window (checked again per attempt)
        attempts = cstore.claim_due_attempts(
            s, node=self.node, now=now, limit=limit, campaign_ids=[run.id]
        )
        ready: list[tuple[Attempt, str]] = []
        if not attempts:
            return ready
        facts = cstore.dial_facts(
            s,
            attempts,
            campaign_id=run.id,
            day_start=rules.day_start(run.policy, now),
            daily_cap=run.policy.cross_campaign_daily_cap,
        )
        for attempt in attempts:
            fact = facts[attempt.id]
            gate = rules.dial_gate(
                run.policy,
                now=now,
                attempts_made=fact.attempts_made,
                last_attempt_at=fact.last_attempt_at,
                opted_out=fact.opted_out,
                unallocated_before=fact.unallocated_before,
                called_today_by_other_campaign=fact.called_today_elsewhere,
            )
            if gate.dial_now:
                ready.append((attempt, fact.language or run.default_language))
            elif gate.not_before is not None:
                run.waiting_why = gate.reason
                cstore.put_off(s, attempt.id, gate.not_before)
            else:
                cstore.finish_attempt(
                    s, attempt.id, outcome=Outcome.SKIPPED, detail=gate.reason, ended_at=now
                )
        if ready:
            cstore.mark_originated_many(s, {a.id: f"out-{a.id}" for a, _ in ready}, started_at=now)
            for attempt, _ in ready:
                s.expunge(attempt)
        return ready

    async def _place(self, run: Running, attempt: Attempt, language: str) -> None:
        try:
            out = await self.service.call(
                attempt.phone,
                run.flow,
                language,
                caller_id=run.caller_id,
                ring_timeout=self.ring_timeout,
                attempt_id=attempt.id,
                call_id=attempt.id,
                variables=None,
            )
        except Exception as exc:  # not placed: the call's row could not be written...
            log.exception("placing attempt %s failed", attempt.id)
            await self._not_placed(run, attempt, f"could not place the call: {exc!r}")
            return
        finally:
            self._placing -= 1
        if not out.placed:
            await self._not_placed(run, attempt, out.detail or "the call could not be placed")
            return
        self.placed += 1
        run.backoff = 0.0
        run.failures_in_row = 0
        if run.reason and run.reason.startswith(TRUNK_FAILING):
            run.reason = None
        await self._follow(run, attempt, out)

    async def _not_placed(self, run: Running, attempt: Attempt, detail: str) -> None:
        """The call was not placed: the attempt goes back unspent (due again in a few
        seconds). After HOLD_AFTER such failures in a row the campaign holds off (2 s,
        doubling to 30 s), saying why, until a call gets through again."""
        run.in_flight.discard(attempt.id)
        log.warning("campaign %s: a call was not placed: %s", run.name, detail)
        run.failures_in_row += 1
        now = self.monotonic()
        if run.failures_in_row >= HOLD_AFTER and now >= run.hold_until:
            if ": 0 no answer from Asterisk" in detail:  # ARI did not answer at all
                run.reason = f"{ASTERISK_DOWN}: {detail}"[:300]
            else:
                run.reason = f"{TRUNK_FAILING}: {detail}"[:300]
            run.backoff = min(max(2.0, run.backoff * 2), 30.0)
            run.hold_until = now + run.backoff
        retry_at = self.clock() + timedelta(seconds=max(run.backoff, 2.0))
        for retry in range(10):
            try:
                await self._db(lambda s: cstore.return_unplaced(s, attempt.id, retry_at))
                return
            except sa.exc.OperationalError:
                await asyncio.sleep(0.5 * (retry + 1))

    async def _follow(self, run: Running, attempt: Attempt, out: OutboundCall) -> None:
        try:
            status = await asyncio.shield(out.done)
        finally:
            run.in_flight.discard(attempt.id)
        outcome = attempt_outcome(status)
        detail = (
            "; ".join(
                part
                for part in (
                    out.detail,
                    f"SIP {out.sip_code}" if out.sip_code else None,
                    f"Q.850 cause {out.cause}"
                    if out.cause and outcome is not Outcome.COMPLETED
                    else None,
                )
                if part
            )
            or None
        )
        if outcome is Outcome.FAILED:
            run.reason = f"calls fail ({detail or 'no answer from the trunk'}): is the trunk up?"
        elif outcome in (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.INTERRUPTED, Outcome.PARTIAL):
            run.waiting_why = outcome.replace("_", " ")
        for retry in range(10):  # a busy database must not leave the attempt in flight
            try:
                await self._db(
                    lambda s: self._settle(
                        s,
                        attempt,
                        outcome,
                        call_id=out.call_id,
                        answered_at=out.answered_at,
                        ended_at=out.ended_at or self.clock(),
                        cause=out.cause,
                        sip_code=out.sip_code,
                        detail=detail,
                    )
                )
                break
            except cstore.AttemptStateError as exc:
                # Settled already: another node took this one over while this node looked
                # down (no heartbeat for [cluster] node_timeout_seconds). Its settling stands.
                log.warning("attempt %s was settled elsewhere; its %s here is not: %s",
                            attempt.id, outcome, exc)  # fmt: skip
                break
            except sa.exc.OperationalError:
                log.warning("settling attempt %s: database busy, retrying", attempt.id)
                await asyncio.sleep(0.5 * (retry + 1))

    def _settle(
        self,
        s: Session,
        attempt: Attempt,
        outcome: Outcome,
        *,
        call_id: str | None = None,
        answered_at: datetime | None = None,
        ended_at: datetime | None = None,
        cause: int | None = None,
        sip_code: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Record the outcome, then schedule the retry the rules allow (exactly once)."""
        done = cstore.finish_attempt(
            s,
            attempt.id,
            outcome=outcome,
            cause=cause,
            sip_code=sip_code,
            answered_at=answered_at,
            ended_at=ended_at,
            call_id=call_id,
            detail=detail,
        )
        run = self.campaigns.get(done.campaign_id)
        if run is not None:
            policy = run.policy
        else:
            campaign = s.get(Campaign, done.campaign_id)
            if campaign is None:
                return
            policy = policy_of(campaign)
        ended = ended_at or self.clock()
        # Most outcomes (completed, declined...) are final whatever the count: only when a
        # first attempt would be retried is the contact's real count needed.
        decision = rules.decide_next(policy, outcome=outcome, attempts_made=1, ended_at=ended)
        if isinstance(decision, rules.Retry):
            made = cstore.attempts_made(s, done.contact_id)
            decision = rules.decide_next(
                policy, outcome=outcome, attempts_made=int(made), ended_at=ended
            )
        if isinstance(decision, rules.Retry):
            cstore.add_retry(s, done, decision.due_at)

    # ------------------------------------------------------------------ shutdown
    async def stop_dialling(self) -> None:
        """Claim and place no more calls (a graceful shutdown). The calls already placed
        are still followed, so their attempts get their real outcomes; an attempt claimed
        but not placed goes back to the queue unspent."""
        import inspect

        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._calls):
            coro = task.get_coro()
            if inspect.iscoroutine(coro) and (
                inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
            ):
                task.cancel()  # never ran: its call was not placed
                attempt_id = task.get_name().removeprefix("place-")
                for run in self.campaigns.values():
                    run.in_flight.discard(attempt_id)
        placing = {a for run in self.campaigns.values() for a in run.in_flight}
        returned = await self._db(lambda s: self._return_claimed(s, placing))
        if returned:
            log.info("stopped dialling: %s claimed attempt(s) back in the queue", returned)

    def _return_claimed(self, s: Session, placing: set[str]) -> int:
        """Attempts this node claimed whose call was never placed: back to the queue."""
        returned = 0
        for attempt in cstore.stale_dialing(s, self.node):
            if attempt.id in placing:
                continue
            if repo.call_of_attempt(s, attempt.id) is None and cstore.return_unplaced(
                s, attempt.id
            ):
                returned += 1
        return returned

    async def wait_settled(self, timeout: float) -> int:
        """Wait at most ``timeout`` seconds until the attempts of the calls placed are
        settled; returns how many are not (the next start's reconcile settles those)."""
        pending = {task for task in self._calls if not task.done()}
        if pending and timeout > 0:
            _, pending = await asyncio.wait(pending, timeout=timeout)
        return len(pending)

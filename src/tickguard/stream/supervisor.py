"""The reconnect loop of one websocket session (one app key).

One explicit loop, two injected policies — the shape of websockets' own client
(``process_exception`` + ``backoff``): a classifier decides retry or give up; a
:class:`~tickguard.stream.backoff.Backoff` decides how long to wait (immediate first retry,
full jitter after); a :class:`~tickguard.stream.breaker.Breaker` cools a flap loop down. The
app key is leased for the whole life of the loop so no second session can use it; a
SESSION_CONFLICT from the broker means *wait*, never fight. Every drop opens gaps; data on
the next connection closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import date, datetime

import httpx

from tickguard.brokers.base import BrokerSession, BrokerTraits
from tickguard.errors import AuthError, SessionConflictError, SubscriptionError
from tickguard.models import KST
from tickguard.settings import Settings
from tickguard.stream.backoff import Backoff
from tickguard.stream.batcher import EventQueue
from tickguard.stream.breaker import Breaker
from tickguard.stream.classify import Verdict, classify
from tickguard.stream.connection import ConnectionRunner, FrameRecorder, utc_now
from tickguard.stream.gaps import GapTracker
from tickguard.stream.keylock import KeyGuard, KeyLease
from tickguard.stream.planner import SessionPlan
from tickguard.stream.stats import SessionStats

log = logging.getLogger(__name__)


async def pause(seconds: float, stop: asyncio.Event) -> None:
    """Wait ``seconds`` or until ``stop`` is set, whichever comes first."""
    if seconds <= 0 or stop.is_set():
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Supervisor:
    """Keeps one planned session alive until ``stop`` is set or a failure is final."""

    def __init__(
        self,
        traits: BrokerTraits,
        settings: Settings,
        plan: SessionPlan,
        *,
        http: httpx.AsyncClient,
        queue: EventQueue,
        key_guard: KeyGuard,
        recorder: FrameRecorder | None = None,
        in_session: Callable[[], bool] | None = None,
        classifier: Callable[[BaseException], Verdict] = classify,
        backoff: Backoff | None = None,
        breaker: Breaker | None = None,
        trading_day: date | None = None,
    ) -> None:
        self.traits, self.settings, self.plan = traits, settings, plan
        self.http, self.queue, self.key_guard, self.recorder = http, queue, key_guard, recorder
        self.in_session = in_session or (lambda: True)
        self.classifier = classifier
        self.backoff = backoff or Backoff.from_settings(settings.stream)
        self.breaker = breaker or Breaker.from_settings(settings.stream)
        self.trading_day = trading_day
        self.stats = SessionStats(key=plan.key_name, subscriptions=len(plan.subscriptions))
        self.gaps = GapTracker(traits.broker, plan.subscriptions)
        self._authorization: str | None = None
        self._drop_mono: float | None = None
        self._reopened_since_drop = False
        self._connected_before = False

    async def run(self, stop: asyncio.Event) -> SessionStats:
        """Lease the key (waiting while another holder has it), then run the connect loop."""
        while not stop.is_set():
            try:
                async with self.key_guard.hold(self.traits.broker, self.plan.credential) as lease:
                    await self._connect_loop(stop, lease)
                    return self.stats
            except SessionConflictError as exc:
                self.stats.key_conflicts += 1
                delay = max(self.backoff.next_delay(), self.backoff.base_s)
                log.warning("app key %s busy (%s); waiting %.2fs", self.plan.key_name, exc, delay)
                await pause(delay, stop)
        return self.stats

    async def _connect_loop(self, stop: asyncio.Event, lease: KeyLease) -> None:
        url = self.traits.ws_url(self.settings)
        while not stop.is_set():
            runner: ConnectionRunner | None = None
            try:
                runner = self._runner(url, await self._session(), stop, lease)
                await runner.run()
                self._account(runner)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                verdict = self.classifier(exc)
                if isinstance(exc, AuthError | SubscriptionError):
                    self._authorization = None
                await self._after_failure(runner, verdict)
                if not verdict.retry:
                    self.stats.gave_up = verdict.cause
                    log.error("session %s gave up: %s", self.plan.key_name, verdict.cause)
                    return
                await pause(self._retry_delay(exc), stop)

    async def _session(self) -> BrokerSession:
        if self._authorization is None:
            self._authorization = await self.traits.authorize(
                self.http, self.settings, self.plan.credential
            )
        day = self.trading_day or datetime.now(KST).date()
        return self.traits.new_session(self._authorization, day, self.settings)

    def _runner(
        self, url: str, session: BrokerSession, stop: asyncio.Event, lease: KeyLease
    ) -> ConnectionRunner:
        return ConnectionRunner(
            broker=self.traits.broker,
            url=url,
            subscriptions=self.plan.subscriptions,
            session=session,
            queue=self.queue,
            gaps=self.gaps,
            stats=self.stats,
            stream=self.settings.stream,
            stop=stop,
            recorder=self.recorder,
            in_session=self.in_session,
            lease_lost=lease.lost,
        )

    def _account(self, runner: ConnectionRunner) -> None:
        """Fold what one finished connection observed into the session's figures."""
        stats = self.stats
        if runner.opened_mono is not None:
            if self._connected_before:
                stats.reconnects += 1
            self._connected_before = True
            if self._drop_mono is not None and not self._reopened_since_drop:
                self._reopened_since_drop = True
                took = runner.opened_mono - self._drop_mono
                stats.reconnect_s_max = max(stats.reconnect_s_max, took)
                if stats.reconnect_s_first < 0:
                    stats.reconnect_s_first = took
        if runner.first_data_mono is not None and self._drop_mono is not None:
            stats.recover_s_max = max(stats.recover_s_max, runner.first_data_mono - self._drop_mono)
            self._drop_mono = None
        if runner.first_data_mono is not None and runner.last_data_mono is not None:
            span = runner.last_data_mono - runner.first_data_mono
            self.backoff.connection_carried_data(span)

    async def _after_failure(self, runner: ConnectionRunner | None, verdict: Verdict) -> None:
        self.stats.last_cause = verdict.cause
        if runner is not None:
            self._account(runner)
        if runner is None or runner.opened_at is None:
            log.warning("connect failed on %s: %s", self.plan.key_name, verdict.cause)
            return
        self.stats.drops += 1
        if self._drop_mono is None:
            self._drop_mono = time.monotonic()
            self._reopened_since_drop = False
        # From the last *data* frame: keep-alives and acks prove the socket, not the feed.
        start = runner.last_data_at or runner.opened_at
        gaps = self.gaps.on_disconnect(start, verdict.cause, utc_now())
        self.stats.gaps_opened += len(gaps)
        log.warning("connection %s dropped: %s", self.plan.key_name, verdict.cause)
        if gaps:
            # Through the same bounded queue as the data: waits for room, never drops.
            await self.queue.put_many(gaps)

    def _retry_delay(self, exc: BaseException) -> float:
        delay = self.backoff.next_delay()
        if isinstance(exc, SessionConflictError):
            delay = max(delay, self.backoff.base_s)
        cooldown = self.breaker.record_reconnect(time.monotonic())
        if cooldown:
            self.stats.breaker_trips += 1
            log.warning(
                "breaker open on %s: >%d reconnects in %.0fs; cooling down %.1fs",
                self.plan.key_name,
                self.breaker.max_reconnects,
                self.breaker.window_s,
                cooldown,
            )
            delay = max(delay, cooldown)
        return delay

"""One websocket connection of a session: connect → handshake → subscribe → read, until it ends.

The reconnect loop (:mod:`tickguard.stream.supervisor`) makes a new
:class:`ConnectionRunner` for every attempt and reads what it observed afterwards (open
time, last frame, first/last data). Here live the per-frame duties: record the raw frame,
decode it through the broker session, echo replies at once (KIS PINGPONG as a text frame),
check acks, raise on a session conflict, open/close gaps' ends, and hand events to the
bounded queue. A watchdog task beside the reader closes a silent connection, expires acks,
and turns a stop request into a clean close.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tickguard.brokers.base import Ack, BrokerSession, Control, ControlKind, Decoded, Subscription
from tickguard.errors import AuthError, SessionConflictError, SubscriptionError
from tickguard.models import BookSnapshot, Broker, QuarantineRecord, Trade
from tickguard.settings import StreamSettings
from tickguard.stream.acks import AckTracker
from tickguard.stream.batcher import EventQueue, Item
from tickguard.stream.classify import KeyLostError, StaleFeedError
from tickguard.stream.gaps import GapTracker
from tickguard.stream.stats import SessionStats

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 10.0
OPEN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0


class FrameRecorder(Protocol):
    def record(self, sent: bool, at: datetime, raw: str | bytes) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class ConnectionRunner:
    """Runs one connection; raises what ended it, returns only after a requested stop."""

    def __init__(
        self,
        *,
        broker: Broker,
        url: str,
        subscriptions: Sequence[Subscription],
        session: BrokerSession,
        queue: EventQueue,
        gaps: GapTracker,
        stats: SessionStats,
        stream: StreamSettings,
        stop: asyncio.Event,
        recorder: FrameRecorder | None = None,
        in_session: Callable[[], bool] = lambda: True,
        lease_lost: asyncio.Event | None = None,
    ) -> None:
        self.broker, self.url, self.subscriptions = broker, url, tuple(subscriptions)
        self.session, self.queue, self.gaps, self.stats = session, queue, gaps, stats
        self.stale_after_s = stream.stale_after_s
        self.stop, self.recorder, self.in_session = stop, recorder, in_session
        self.lease_lost = lease_lost
        self.acks = AckTracker(self.subscriptions)
        self.opened_at: datetime | None = None
        self.opened_mono: float | None = None
        self.last_frame_at: datetime | None = None
        self.last_data_at: datetime | None = None
        self.first_data_mono: float | None = None
        self.last_data_mono: float | None = None
        self._failure: BaseException | None = None
        self._alive_mono = 0.0
        self._in_put = False
        self._ack_deadline = 0.0
        self._logged_in = True

    async def run(self) -> None:
        ws = await connect(
            self.url, ping_interval=None, open_timeout=OPEN_TIMEOUT_S, close_timeout=CLOSE_TIMEOUT_S
        )
        self.opened_at, self.opened_mono = utc_now(), time.monotonic()
        self._alive_mono = self.opened_mono
        self.stats.connects += 1
        watchdog = asyncio.create_task(self._watch(ws), name="stream-watchdog")
        try:
            handshake = self.session.handshake()
            self._logged_in = not handshake
            await self._send(ws, handshake)
            if self._logged_in:
                await self._subscribe(ws)
            await self._read(ws)
        except ConnectionClosed as exc:
            if self._failure is not None:
                raise self._failure from exc
            if self.stop.is_set():
                return
            raise
        finally:
            watchdog.cancel()
            ws.transport.abort()

    async def _send(self, ws: ClientConnection, frames: Sequence[str]) -> None:
        for frame in frames:
            await ws.send(frame)
            if self.recorder is not None:
                self.recorder.record(True, utc_now(), frame)

    async def _subscribe(self, ws: ClientConnection) -> None:
        self._ack_deadline = time.monotonic() + ACK_TIMEOUT_S
        await self._send(ws, self.session.subscribe(self.subscriptions))
        log.info("subscribed %d registrations on %s", len(self.subscriptions), self.broker.value)

    async def _read(self, ws: ClientConnection) -> None:
        stats, session, recorder, queue = self.stats, self.session, self.recorder, self.queue
        now_utc = datetime.now
        while True:
            raw = await ws.recv()
            now = now_utc(UTC)
            self.last_frame_at = now
            stats.frames += 1
            if recorder is not None:
                recorder.record(False, now, raw)
            decoded = session.receive(raw, now)
            if decoded.replies:
                await self._send(ws, decoded.replies)
                stats.replies += len(decoded.replies)
            items: Sequence[Item]
            if decoded.acks or decoded.controls or decoded.quarantined or decoded.halts:
                items = await self._on_frame(ws, decoded, now)
            elif decoded.events:  # the hot path: a frame of trades/books only
                items = self._on_data(decoded.events, now)
            else:
                continue
            if items:
                self._in_put = True
                try:
                    # the queue copies the references: the list is not kept
                    await queue.put_many(items)
                finally:
                    self._in_put = False

    async def _on_frame(self, ws: ClientConnection, decoded: Decoded, now: datetime) -> list[Item]:
        """Every part of a frame that carries more than data, in the order it is queued."""
        items: list[Item] = []
        if decoded.acks:
            items.extend(self._on_acks(decoded.acks, now))
        if decoded.controls:
            await self._on_controls(ws, decoded.controls)
        if decoded.quarantined:
            items.extend(self._quarantine(decoded, now))
        if decoded.events:
            items.extend(self._on_data(decoded.events, now))
        if decoded.halts:
            items.extend(decoded.halts)
        return items

    def _on_data(self, events: list[Trade | BookSnapshot], now: datetime) -> Sequence[Item]:
        """Count and timestamp a frame's data; its events themselves, no copy (rarely
        preceded by the gaps the first data closes)."""
        mono = time.monotonic()
        stats = self.stats
        stats.data_frames += 1
        trades = 0
        for event in events:
            if type(event) is Trade:
                trades += 1
        stats.trades += trades
        stats.books += len(events) - trades
        self.last_data_mono = self._alive_mono = mono
        self.last_data_at = now
        if self.first_data_mono is None:
            self.first_data_mono = mono
            closed = self.gaps.on_data(now, self._live_subscriptions())
            stats.gaps_closed += len(closed)
            return [*closed, *events]
        return events

    def _live_subscriptions(self) -> list[Subscription]:
        """Accepted, plus those still waiting for an ack (data flows: assume they are on)."""
        return [*self.acks.accepted, *self.acks.pending]

    def _on_acks(self, acks: list[Ack], now: datetime) -> list[Item]:
        accepted: list[Subscription] = []
        for ack in acks:
            if ack.unsubscribe:
                continue
            if ack.ok:
                self.stats.acks_ok += 1
            else:
                self.stats.acks_refused += 1
            accepted.extend(self.acks.on_ack(ack))
        closed: list[Item] = []
        if accepted and self.first_data_mono is not None:
            # Data was already flowing when this ack came: its gap ends now.
            gaps = self.gaps.on_data(now, accepted)
            self.stats.gaps_closed += len(gaps)
            closed.extend(gaps)
        if self.acks.complete and self.subscriptions and not self.acks.accepted:
            first = next(iter(self.acks.refused.values()), None)
            code = f"{first.code} {first.message}" if first else "no ack"
            raise SubscriptionError(f"all {len(self.subscriptions)} subscriptions refused ({code})")
        return closed

    async def _on_controls(self, ws: ClientConnection, controls: list[Control]) -> None:
        for control in controls:
            if control.kind is ControlKind.SESSION_CONFLICT:
                self.stats.session_conflicts += 1
                raise SessionConflictError(f"{control.code} {control.message}".strip())
            if control.kind is ControlKind.LOGIN_FAILED:
                raise AuthError(f"login refused: {control.code} {control.message}".strip())
            if control.kind is ControlKind.LOGIN_OK and not self._logged_in:
                self._logged_in = True
                await self._subscribe(ws)
            elif control.kind is ControlKind.SERVER_CLOSING:
                log.warning("server announced close: %s %s", control.code, control.message)

    def _quarantine(self, decoded: Decoded, now: datetime) -> list[Item]:
        self.stats.quarantined += len(decoded.quarantined)
        return [
            QuarantineRecord(self.broker, now, q.reason, q.raw, q.detail)
            for q in decoded.quarantined
        ]

    async def _watch(self, ws: ClientConnection) -> None:
        """Stop → clean close; silence in session → abort; lost key → abort; acks → expire."""
        interval = min(1.0, self.stale_after_s / 4)
        while True:
            try:
                await asyncio.wait_for(self.stop.wait(), interval)
            except TimeoutError:
                pass
            else:
                await ws.close()
                return
            mono = time.monotonic()
            if self._ack_deadline and mono > self._ack_deadline and not self.acks.complete:
                self.stats.acks_missing += len(self.acks.expire())
            if self.lease_lost is not None and self.lease_lost.is_set():
                self._abort(ws, KeyLostError("the app key's lock was taken by another process"))
                return
            if self._in_put or not self.in_session():
                self._alive_mono = mono
            elif mono - self._alive_mono > self.stale_after_s:
                self.stats.stale += 1
                silent = mono - self._alive_mono
                self._abort(ws, StaleFeedError(f"no data for {silent:.1f}s"))
                return

    def _abort(self, ws: ClientConnection, failure: BaseException) -> None:
        log.warning("closing connection: %s", failure)
        self._failure = failure
        ws.transport.abort()

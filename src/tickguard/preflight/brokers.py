"""Each configured broker: REST reachable, clock, plan, and per app key an authorization and
a websocket handshake — without ever taking a key from a running collector.

Why the key lock first: KIS allows one websocket session per app key and Kiwoom kicks the
older one. A preflight that connected while the collector runs would knock it off. So each
key's Redis lock (:mod:`tickguard.stream.keylock`) is looked at first: held means a live
collector, reported as such, and nothing connects. Free means preflight takes the lock for
the few seconds of its probe, so a collector starting meanwhile waits instead of fighting.
Authorizations are never asked for more often than ``token_reissue_min_s`` (KIS EGW00133).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from websockets.asyncio.client import ClientConnection, connect

from tickguard.brokers.base import BrokerSession, BrokerTraits, Channel, ControlKind, Subscription
from tickguard.brokers.registry import REGISTRY
from tickguard.collector import DEFAULT_CHANNELS, make_plan
from tickguard.errors import AuthError, PlanError, SessionConflictError, TickguardError
from tickguard.models import Broker
from tickguard.preflight.model import CheckResult, failed, passed, warned
from tickguard.settings import AppCredential, Settings
from tickguard.stream.keylock import KeyGuard, lock_name

WS_TIMEOUT_S = 5.0


def configured(settings: Settings) -> list[Broker]:
    """Brokers with at least one app key (the others are not deployed)."""
    return [b for b, traits in REGISTRY.items() if traits.credentials(settings)]


def check_plan(settings: Settings, broker: Broker, symbols: Sequence[str]) -> CheckResult:
    """The day's symbols × channels fit the per-session budget of the configured keys."""
    name = f"{broker.value} plan"
    try:
        plans = make_plan(settings, broker, symbols, DEFAULT_CHANNELS)
    except PlanError as exc:
        return failed(name, str(exc), "add app keys (one session each) or subscribe fewer symbols")
    cap = REGISTRY[broker].max_registrations(settings)
    sizes = "+".join(str(len(p.subscriptions)) for p in plans)
    return passed(name, f"{sizes} registrations in {len(plans)} session(s), cap {cap} each")


async def check_rest(
    settings: Settings, broker: Broker, http: httpx.AsyncClient
) -> list[CheckResult]:
    """GET the REST base URL: any HTTP answer proves reachability; its Date header the clock."""
    base: str = getattr(settings, broker.value).rest_url
    started = time.monotonic()
    try:
        response = await http.get(base.rstrip("/") + "/")
    except httpx.HTTPError as exc:
        return [
            failed(
                f"{broker.value} rest",
                f"unreachable: {type(exc).__name__}",
                f"check the network/firewall to {httpx.URL(base).host} and "
                f"TICKGUARD_{broker.value.upper()}__REST_URL; the collector cannot authorize",
            )
        ]
    took = time.monotonic() - started
    midpoint = datetime.now(UTC).timestamp() - took / 2
    rest = passed(f"{broker.value} rest", f"HTTP {response.status_code} in {took * 1000:.0f} ms")
    return [rest, clock_check(settings, broker, response.headers.get("date"), midpoint)]


def clock_check(
    settings: Settings, broker: Broker, header: str | None, local: float
) -> CheckResult:
    name = f"{broker.value} clock"
    if not header:
        return warned(name, "no Date header", "clock skew unknown: check NTP on this host")
    try:
        # Date is truncated to the second: the server's time lies in [Date, Date + 1).
        server = parsedate_to_datetime(header).timestamp() + 0.5
    except (TypeError, ValueError):
        return warned(name, f"unparsable Date {header!r}", "clock skew unknown: check NTP")
    skew = local - server
    value = f"local − broker = {skew:+.1f} s (±0.5 s: Date has 1 s resolution)"
    cfg = settings.preflight
    hint = "sync this host's clock (chrony/NTP): receive times and gap bounds depend on it"
    if abs(skew) > cfg.clock_skew_fail_s:
        return failed(name, value, hint)
    if abs(skew) > cfg.clock_skew_warn_s:
        return warned(name, value, hint)
    return passed(name, value)


async def check_key(
    settings: Settings,
    broker: Broker,
    credential: AppCredential,
    symbol: str,
    *,
    http: httpx.AsyncClient,
    redis: aioredis.Redis,
    day: date,
) -> CheckResult:
    """One app key: live collector? else authorize (rate-guarded) and handshake."""
    name = f"{broker.value} key {credential.name}"
    prefix = settings.sink.stream_prefix
    try:
        if await redis.exists(lock_name(prefix, broker, credential)):
            ttl = await redis.pttl(lock_name(prefix, broker, credential))
            return passed(
                name, f"held by a live collector (lock ttl {ttl / 1000:.0f} s); not probed"
            )
        if not await _may_authorize(settings, broker, credential, redis):
            return warned(
                name,
                f"authorized less than {settings.preflight.token_reissue_min_s:.0f} s ago",
                "not asked again (KIS refuses a token within a minute): rerun in a minute",
            )
    except RedisError as exc:
        return warned(
            name,
            f"key lock unknown (Redis: {type(exc).__name__}); not probed",
            "a probe could knock a running collector off its key: fix Redis, rerun preflight",
        )
    try:
        async with KeyGuard(redis, prefix).hold(broker, credential):
            return await _probe(settings, broker, credential, symbol, http, day, name)
    except SessionConflictError:
        return passed(name, "a collector took the key during the probe; not probed")


async def _may_authorize(
    settings: Settings, broker: Broker, credential: AppCredential, redis: aioredis.Redis
) -> bool:
    """Claim the right to authorize this key now (a marker that expires after the minimum)."""
    digest = hashlib.sha256(credential.app_key.get_secret_value().encode()).hexdigest()[:20]
    marker = f"{settings.sink.stream_prefix}:preflight:authorized:{broker.value}:{digest}"
    ms = int(settings.preflight.token_reissue_min_s * 1000)
    if ms <= 0:
        return True
    return bool(await redis.set(marker, b"1", nx=True, px=ms))


async def _probe(
    settings: Settings,
    broker: Broker,
    credential: AppCredential,
    symbol: str,
    http: httpx.AsyncClient,
    day: date,
    name: str,
) -> CheckResult:
    traits = REGISTRY[broker]
    try:
        authorization = await traits.authorize(http, settings, credential)
    except TickguardError as exc:
        return failed(
            name,
            f"authorization refused: {exc}",
            "check the app key/secret and that the key is enabled for this environment",
        )
    started = time.monotonic()
    try:
        how = await asyncio.wait_for(
            _handshake(traits, settings, authorization, day, symbol), WS_TIMEOUT_S
        )
    except SessionConflictError as exc:
        return warned(
            name,
            f"broker says the key is in use: {exc}",
            "another program (not a tickguard collector) uses this key: stop it before the open",
        )
    except Exception as exc:  # any failure of the probe is the finding
        return failed(
            name,
            f"websocket handshake failed: {type(exc).__name__}: {exc}"[:300],
            f"check TICKGUARD_{broker.value.upper()}__WS_URL and the broker's status page",
        )
    took = (time.monotonic() - started) * 1000
    return passed(name, f"authorized; {how} in {took:.0f} ms")


async def _handshake(
    traits: BrokerTraits, settings: Settings, authorization: str, day: date, symbol: str
) -> str:
    """Open a socket, LOGIN (when the broker has one) or subscribe one symbol, then leave."""
    url = traits.ws_url(settings)
    async with connect(url, ping_interval=None, open_timeout=WS_TIMEOUT_S, close_timeout=1) as ws:
        session = traits.new_session(authorization, day, settings)
        login = session.handshake()
        for frame in login:
            await ws.send(frame)
        if login:
            await _until(ws, session, login=True)
            return "LOGIN accepted"
        sub = Subscription(symbol, Channel.TRADES)
        for frame in session.subscribe([sub]):
            await ws.send(frame)
        await _until(ws, session, login=False)
        for frame in session.unsubscribe([sub]):
            await ws.send(frame)
        return "subscription acknowledged"


async def _until(ws: ClientConnection, session: BrokerSession, *, login: bool) -> None:
    """Read until LOGIN_OK (``login``) or the first subscribe ack; raise on refusals."""
    while True:
        decoded = session.receive(await ws.recv(), datetime.now(UTC))
        for reply in decoded.replies:
            await ws.send(reply)
        for control in decoded.controls:
            if control.kind is ControlKind.SESSION_CONFLICT:
                raise SessionConflictError(f"{control.code} {control.message}".strip())
            if control.kind is ControlKind.LOGIN_FAILED:
                raise AuthError(f"login refused: {control.code} {control.message}".strip())
            if login and control.kind is ControlKind.LOGIN_OK:
                return
        for ack in decoded.acks:
            if not login and not ack.unsubscribe:
                if ack.ok:
                    return
                raise AuthError(f"subscription refused: {ack.code} {ack.message}".strip())

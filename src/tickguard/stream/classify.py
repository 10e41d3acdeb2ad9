"""Which failures of a websocket session are worth another try.

The reconnect loop asks :func:`classify` about every exception that ends a connection. The
rule: anything the network, the broker or time can fix is retried (with backoff); anything
only a person can fix — a malformed URL, a refused handshake (401/403/404), a bad setting, a
plan that cannot fit, a programming error — gives up at once and loudly, because retrying it
is the incident's crash loop with extra steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from tickguard.errors import (
    AuthError,
    PlanError,
    ProtocolError,
    RateLimitedError,
    SettingsError,
    TickguardError,
)


class StaleFeedError(TickguardError):
    """No data frame for ``stale_after_s`` during the trading session (watchdog)."""


class KeyLostError(TickguardError):
    """Another process took this app key's lock: the session must end, not fight."""


@dataclass(frozen=True, slots=True)
class Verdict:
    retry: bool
    cause: str
    """Short, log- and ledger-safe description (never contains a secret)."""


def _closed_cause(exc: ConnectionClosed) -> str:
    if exc.rcvd is None and exc.sent is None:
        return "disconnect: no close frame received or sent"
    if exc.rcvd is not None:
        reason = f" {exc.rcvd.reason}" if exc.rcvd.reason else ""
        return f"disconnect: server closed ({exc.rcvd.code}{reason})"
    return f"disconnect: closed by us ({exc.sent.code if exc.sent else '?'})"


def classify(exc: BaseException) -> Verdict:
    """Retry or give up on ``exc``; never raises."""
    if isinstance(exc, ConnectionClosed):
        return Verdict(True, _closed_cause(exc))
    if isinstance(exc, StaleFeedError):
        return Verdict(True, f"stale: {exc}")
    if isinstance(exc, KeyLostError):
        return Verdict(False, f"key lost: {exc}")
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return Verdict(status >= 500 or status == 429, f"handshake refused: HTTP {status}")
    if isinstance(exc, InvalidURI):
        return Verdict(False, "invalid websocket URL")
    if isinstance(exc, InvalidHandshake):
        return Verdict(True, f"handshake failed: {type(exc).__name__}")
    if isinstance(exc, SettingsError | PlanError):
        return Verdict(False, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, AuthError | RateLimitedError | ProtocolError):
        return Verdict(True, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.TransportError):
        return Verdict(True, f"REST transport: {type(exc).__name__}")
    if isinstance(exc, TimeoutError):
        return Verdict(True, "timeout")
    if isinstance(exc, OSError):
        return Verdict(True, f"network: {exc.strerror or type(exc).__name__}")
    return Verdict(False, f"unexpected {type(exc).__name__}: {exc}")

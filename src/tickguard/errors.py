"""tickguard's exception tree, in one place.

    TickguardError                  every error tickguard raises on purpose
    ├── SettingsError               a missing or malformed setting (names the variable)
    ├── DecodeError                 a frame or REST body that cannot be decoded (quarantined)
    ├── ProtocolError               the broker answered outside its protocol (bad ack, kicked)
    │   ├── SessionConflictError    the app key already holds a session (OPSP8996, R10001)
    │   └── SubscriptionError       a subscription was refused (OPSP0008 cap, unknown symbol, ...)
    ├── PlanError                   a subscription plan cannot fit the brokers' budgets
    ├── AuthError                   a token or approval key could not be obtained
    ├── RateLimitedError            the broker said "too many requests" (EGW00201, 1700)
    ├── StorageError                PostgreSQL or Redis refused a write we cannot retry
    ├── SpoolFullError              the disk spool reached its cap (overflow is counted)
    └── StackError                  the embedded PostgreSQL / Valkey could not be started

Library errors (httpx, websockets, psycopg, redis) are translated at the boundary with
``raise X from exc`` so callers only need to know this tree.
"""

from __future__ import annotations


class TickguardError(Exception):
    """Base of every error tickguard raises on purpose."""


class SettingsError(TickguardError):
    """A setting is missing or malformed; the message names the environment variable."""


class DecodeError(TickguardError):
    """A frame or body could not be decoded. ``reason`` is short and stable (used as a label)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ProtocolError(TickguardError):
    """The broker answered outside the protocol we expect."""


class SessionConflictError(ProtocolError):
    """The app key already holds a live session (KIS OPSP8996, Kiwoom R10001)."""


class SubscriptionError(ProtocolError):
    """A subscription request was refused."""


class PlanError(TickguardError):
    """A subscription plan does not fit the brokers' per-session budgets."""


class AuthError(TickguardError):
    """A token or approval key could not be obtained."""


class RateLimitedError(TickguardError):
    """The broker rejected a request for exceeding its rate limit."""


class StorageError(TickguardError):
    """A store refused a write that cannot be retried."""


class SpoolFullError(StorageError):
    """The local disk spool reached its configured cap."""


class StackError(TickguardError):
    """An embedded service could not be started or reached."""

"""Reconnect delays: immediate first retry, then full-jitter exponential backoff with a cap.

Why this shape: a single dropped connection should cost nothing (retry at once), but a broker
that keeps refusing us must not be hammered (KIS blocks IPs that loop connect/close). Full
jitter (AWS architecture blog, "Exponential Backoff And Jitter") spreads many collectors apart.
The attempt counter resets only after a connection has *carried data* for
``reset_after_s`` — a connection that opens and dies at once (the incident's 3–5 s flap) is a
failure, not a success, so it must not reset the backoff.
"""

from __future__ import annotations

import random

from tickguard.settings import StreamSettings


class Backoff:
    """Delay generator for one reconnect loop. Not thread-safe; one per session."""

    def __init__(
        self,
        base_s: float,
        cap_s: float,
        reset_after_s: float,
        rng: random.Random | None = None,
    ) -> None:
        if base_s <= 0 or cap_s <= 0 or reset_after_s <= 0:
            raise ValueError("backoff base, cap and reset_after must be positive")
        self.base_s = base_s
        self.cap_s = cap_s
        self.reset_after_s = reset_after_s
        self._rng = rng if rng is not None else random.Random()
        self.attempt = 0
        """Retries since the last reset; 0 means the next retry is immediate."""

    @classmethod
    def from_settings(cls, stream: StreamSettings, rng: random.Random | None = None) -> Backoff:
        return cls(stream.backoff_base_s, stream.backoff_cap_s, stream.backoff_reset_after_s, rng)

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the delay before retry number ``attempt`` (0 → immediate)."""
        if attempt <= 0:
            return 0.0
        # Cap the exponent too: 2**2000 would overflow a float long before the cap matters.
        return min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, 62))

    def next_delay(self) -> float:
        """The delay before the next retry; advances the attempt counter."""
        delay = self._rng.uniform(0.0, self.ceiling(self.attempt)) if self.attempt else 0.0
        self.attempt += 1
        return delay

    def connection_carried_data(self, data_span_s: float) -> bool:
        """Report how long the connection that just ended carried data; maybe reset.

        ``data_span_s`` is the time from the first to the last data frame on that connection.
        Returns True when the backoff was reset.
        """
        if data_span_s >= self.reset_after_s:
            self.reset()
            return True
        return False

    def reset(self) -> None:
        self.attempt = 0

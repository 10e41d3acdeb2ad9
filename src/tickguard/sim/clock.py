"""The simulator's clock: wall time → session time through a time-scale factor.

``speed=60`` runs the 6.5 h KRX session in 6.5 min; ``start_t`` (seconds since midnight KST)
lets a drill start mid-session instead of waiting for the open. Monotonic wall time drives
it, so a system clock step does not make the market jump.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

from tickguard.models import KST


class SimClock:
    def __init__(self, start_t: float, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start_t = start_t
        self.speed = speed
        self._mono0 = time.monotonic()
        self._epoch0 = time.time()

    def session_t(self) -> float:
        """Session time now: seconds since midnight KST of the simulated day."""
        return self.start_t + (time.monotonic() - self._mono0) * self.speed

    def wall_delay(self, t: float) -> float:
        """Wall seconds until session time ``t`` (negative when it is already past)."""
        return (t - self.session_t()) / self.speed

    def epoch_at(self, t: float) -> float:
        """Wall epoch seconds at which session time ``t`` is (or was) reached."""
        return self._epoch0 + (t - self.start_t) / self.speed

    def elapsed(self) -> float:
        """Wall seconds since the clock started."""
        return time.monotonic() - self._mono0

    def session_datetime(self, day: date) -> datetime:
        """Session time now as an aware KST datetime on ``day``."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=KST)
        return midnight + timedelta(seconds=self.session_t())

"""A reconnect breaker: stop a flap loop from hammering the broker.

Backoff spaces out retries of one outage; it cannot see a connection that comes up, carries a
little data, and dies again every few seconds for an hour. The breaker counts reconnects in
a sliding window and, when there are more than ``max_reconnects``, orders a cool-down and
says so (the caller logs it and counts it). KIS warns that connect/close loops can get an IP
or app key blocked; a cool-down costs seconds of data, a block costs the day.
"""

from __future__ import annotations

from collections import deque

from tickguard.settings import StreamSettings


class Breaker:
    """Sliding-window reconnect counter. Times are monotonic seconds supplied by the caller."""

    def __init__(self, max_reconnects: int, window_s: float, cooldown_s: float) -> None:
        if max_reconnects < 1 or window_s <= 0 or cooldown_s <= 0:
            raise ValueError("breaker limits must be positive")
        self.max_reconnects = max_reconnects
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.trips = 0
        self._times: deque[float] = deque(maxlen=max_reconnects + 1)

    @classmethod
    def from_settings(cls, stream: StreamSettings) -> Breaker:
        return cls(
            stream.breaker_max_reconnects, stream.breaker_window_s, stream.breaker_cooldown_s
        )

    def record_reconnect(self, now: float) -> float:
        """Count one reconnect at ``now``; return the cool-down to wait (0.0 when closed).

        A trip clears the window, so the loop gets a fresh budget after cooling down.
        """
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        if len(self._times) > self.max_reconnects:
            self.trips += 1
            self._times.clear()
            return self.cooldown_s
        return 0.0

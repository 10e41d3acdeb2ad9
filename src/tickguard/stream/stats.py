"""Counters of one supervised session: what the drill, metrics and the run report read.

Bounded by construction: maxima and counts only, never per-event lists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class SessionStats:
    key: str
    """The app key's configured name (never the key itself)."""
    subscriptions: int = 0
    connects: int = 0
    reconnects: int = 0
    """Successful connects after the first one."""
    drops: int = 0
    """Connections that ended other than by our own stop."""
    frames: int = 0
    data_frames: int = 0
    trades: int = 0
    books: int = 0
    quarantined: int = 0
    replies: int = 0
    acks_ok: int = 0
    acks_refused: int = 0
    acks_missing: int = 0
    session_conflicts: int = 0
    key_conflicts: int = 0
    """Times the app key was held by another process or task (we waited, never fought)."""
    stale: int = 0
    breaker_trips: int = 0
    gaps_opened: int = 0
    gaps_closed: int = 0
    reconnect_s_max: float = 0.0
    """Longest time from a drop to the next open socket."""
    recover_s_max: float = 0.0
    """Longest time from a drop to data flowing again."""
    reconnect_s_first: float = -1.0
    """Drop → open socket for the session's first drop (-1: no drop yet)."""
    last_cause: str = ""
    gave_up: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def merge(stats: list[SessionStats]) -> dict[str, Any]:
    """Totals over sessions: sums of counters, maxima of ``*_max``."""
    total: dict[str, Any] = {}
    for item in stats:
        for name, value in item.as_dict().items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if name.endswith("_max"):
                total[name] = max(total.get(name, 0.0), value)
            else:
                total[name] = total.get(name, 0) + value
    return total

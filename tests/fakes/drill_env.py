"""A tiny drill environment for the hook's tests: the configured servers, passed through.

It records what the drill asked of it (its ``during`` call: the session's start and stop,
whether it ran to its end or was cancelled) and reports it, so a test can see the runner
entered the context, used the URLs it named, ran ``during`` beside the collection and
merged ``report()`` into the drill's report.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any


class Passthrough:
    def __init__(self, admin_url: str, redis_url: str) -> None:
        self.admin_url, self.redis_url = admin_url, redis_url
        self.calls: list[tuple[float, float]] = []
        self.cancelled = False
        self.entered = self.exited = False

    async def during(self, session_start_epoch: float, stop_at_epoch: float) -> None:
        self.calls.append((session_start_epoch, stop_at_epoch))
        try:
            await asyncio.sleep(max(0.0, stop_at_epoch - time.time()) + 3600.0)
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    def report(self) -> dict[str, Any]:
        start, stop = self.calls[0] if self.calls else (None, None)
        return {
            "env_entered": self.entered,
            "env_during_calls": len(self.calls),
            "env_session_start": start,
            "env_stop_at": stop,
            "env_cancelled_at_end": self.cancelled,
        }


LAST: list[Passthrough] = []


@contextlib.asynccontextmanager
async def passthrough(admin_url: str, redis_url: str, opts: Any) -> AsyncIterator[Passthrough]:
    env = Passthrough(admin_url, redis_url)
    env.entered = True
    LAST.append(env)
    try:
        yield env
    finally:
        env.exited = True

"""The seam for scenarios whose servers misbehave (Redis or PostgreSQL down, a slow sink).

A scenario names an environment factory as ``"module:function"``
(:attr:`~tickguard.drill.scenarios.Scenario.environment`); the drill calls it with the
configured servers and its options and enters the context it returns before anything else:

    make(admin_url: str, redis_url: str, opts: DrillOptions)
        -> AbstractAsyncContextManager[Disruption]

The :class:`Disruption` names the servers the drill must use instead of the configured ones
(typically private servers it can stop), runs its disruption concurrently with the
collection (:meth:`Disruption.during`, cancelled at the end if still running), and adds its
own keys to the report.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from tickguard.errors import TickguardError


@runtime_checkable
class Disruption(Protocol):
    admin_url: str
    """PostgreSQL admin URL the drill creates its scratch database on."""
    redis_url: str
    """Redis URL of the drill's stream, locks and limiter."""

    async def during(self, session_start_epoch: float, stop_at_epoch: float) -> None:
        """The disruption, run beside the collection (wall epoch seconds)."""

    def report(self) -> dict[str, Any]:
        """Extra keys of the drill report (what was done, when, what it cost)."""


EnvironmentFactory = Callable[[str, str, Any], AbstractAsyncContextManager[Disruption]]


class NamedObjectError(TickguardError):
    """A ``"module:function"`` reference that does not resolve."""


def resolve(reference: str) -> Any:
    """Import ``"package.module:attribute"`` lazily and return the attribute."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise NamedObjectError(f"expected 'module:function', got {reference!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise NamedObjectError(f"cannot import {module_name!r} for {reference!r}: {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise NamedObjectError(f"{module_name!r} has no {attribute!r}") from None

"""The restart gate every supervised flow passes first (collectors and persist).

The reactive automation reruns any Crashed or Failed run tagged ``tickguard-supervised``;
this gate is what keeps that from looping. It counts the deployment's failures in the
budget window through the Prefect API, waits the growing delay, and past the budget sends
the one escalation and tells the flow to end Cancelled (which nothing reruns).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from tickguard.orchestration import budget, escalate, runtime
from tickguard.settings import Settings

log = logging.getLogger(__name__)


async def restart_gate(settings: Settings, label: str, redis: Any) -> budget.Verdict | None:
    """None outside a deployment run (a direct call is not supervised)."""
    run = runtime.current_run()
    if run is None or run.deployment_id is None:
        return None
    from prefect.client.orchestration import get_client

    policy = budget.RestartPolicy.from_settings(settings.orchestration)
    now = datetime.now(UTC)
    async with get_client() as client:
        failures = await budget.recent_failures(
            client, run.deployment_id, now - policy.window, run.id
        )
    verdict = budget.assess(failures, now, policy)
    if not verdict.allowed:
        await escalate.budget_exhausted(settings, label, run, verdict, policy, redis)
    elif verdict.delay_s:
        log.warning(
            "%s: restart %d of %d in %s; waiting %.1f s",
            label, verdict.failures, policy.max_restarts, policy.window, verdict.delay_s,
        )  # fmt: skip
        await asyncio.sleep(verdict.delay_s)
    return verdict

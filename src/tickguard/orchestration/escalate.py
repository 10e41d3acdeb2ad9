"""The one Slack escalation when a collector's restart budget is spent.

De-duplicated with a Redis ``SET NX`` per deployment for the budget window, so however many
runs reach an exhausted budget (a schedule, a manual rerun), people get one message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis

from tickguard.alerting import SlackPoster, alert_blocks
from tickguard.orchestration import runtime
from tickguard.orchestration.budget import RestartPolicy, Verdict, claim_escalation
from tickguard.settings import Settings

log = logging.getLogger(__name__)


def escalation_key(settings: Settings, deployment_id: object) -> str:
    return f"{settings.sink.stream_prefix}:escalated:{deployment_id}"


async def budget_exhausted(
    settings: Settings,
    label: str,
    run: Any,
    verdict: Verdict,
    policy: RestartPolicy,
    redis: aioredis.Redis,
) -> bool:
    """Post the escalation unless one went out in this window; True when this call posted."""
    log.error(
        "%s: %d failures in %s exceed the restart budget of %d; not restarting",
        label, verdict.failures, policy.window, policy.max_restarts,
    )  # fmt: skip
    if not await claim_escalation(
        redis, escalation_key(settings, run.deployment_id), policy.window
    ):
        log.info("escalation already sent for this deployment in this window")
        return False
    title = f"{label} stopped: restart budget exhausted"
    fields = {
        "deployment": label,
        "flow run": str(run.name),
        "failures": f"{verdict.failures} in {policy.window}",
        "budget": f"{policy.max_restarts} restarts",
    }
    text = "It crashed or failed on every restart; it will not be restarted again until fixed."
    link = runtime.run_link(run.id)
    blocks = alert_blocks(title, fields, text=text, link=("Prefect run", link) if link else None)
    poster = SlackPoster(settings.slack)
    return await asyncio.to_thread(poster.post, title, blocks)

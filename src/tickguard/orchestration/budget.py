"""The restart budget: at most N restarts in M minutes, a growing delay, one escalation.

Why in the flow and not in the automation: a Prefect automation can rerun a deployment but
cannot count. So the reactive automation only reruns a Crashed/Failed collector; the new
run's start gate counts its deployment's recent failures through the Prefect API, waits the
growing delay, and past the budget posts ONE Slack escalation (deduplicated in Redis) and
ends without collecting — ending Cancelled, which no automation reruns, so the loop stops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tickguard.settings import OrchestrationSettings

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    max_restarts: int
    window: timedelta
    delay_base_s: float
    delay_cap_s: float

    @classmethod
    def from_settings(cls, cfg: OrchestrationSettings) -> RestartPolicy:
        return cls(
            cfg.restart_max,
            timedelta(minutes=cfg.restart_window_min),
            cfg.restart_delay_base_s,
            cfg.restart_delay_cap_s,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    failures: int
    """Failed or crashed runs of the deployment inside the window."""
    delay_s: float


def assess(failures: list[datetime], now: datetime, policy: RestartPolicy) -> Verdict:
    """How this start stands against the budget, given when recent runs failed."""
    recent = [t for t in failures if now - t <= policy.window]
    count = len(recent)
    if count > policy.max_restarts:
        return Verdict(False, count, 0.0)
    delay = 0.0 if count == 0 else min(policy.delay_cap_s, policy.delay_base_s * 2 ** (count - 1))
    return Verdict(True, count, delay)


async def recent_failures(
    client: PrefectClient, deployment_id: UUID, since: datetime, exclude: UUID
) -> list[datetime]:
    """End times of this deployment's runs that Crashed or Failed since ``since``."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterEndTime,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    runs = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(not_any_=[exclude]),
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.CRASHED, StateType.FAILED])
            ),
            end_time=FlowRunFilterEndTime(after_=since),
        ),
        limit=200,
    )
    return [r.end_time for r in runs if r.end_time is not None]


async def claim_escalation(redis: aioredis.Redis, key: str, ttl: timedelta) -> bool:
    """True for the first caller within ``ttl`` (SET NX): one escalation per incident.

    Without Redis we escalate anyway: a duplicate message beats a silent give-up.
    """
    try:
        return bool(await redis.set(key, "1", nx=True, ex=max(1, int(ttl.total_seconds()))))
    except RedisError as exc:
        log.warning("escalation de-duplication unavailable (%s); escalating", type(exc).__name__)
        return True

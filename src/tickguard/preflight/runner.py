"""Run every check concurrently under one deadline and fold them into a report.

Why concurrent with a per-check deadline: the preflight must answer in under 10 s even when
a broker or a store hangs; a hung check is itself the finding ("timed out"), and the other
checks still report. Blocking probes (psycopg, redis-py, disk) run in threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tickguard.brokers.registry import REGISTRY
from tickguard.calendar import TradingCalendar
from tickguard.collector import DEFAULT_CHANNELS
from tickguard.models import KST
from tickguard.preflight import brokers, code, host, stores
from tickguard.preflight.config import check_calendar, check_settings
from tickguard.preflight.model import CheckResult, PreflightReport, failed
from tickguard.preflight.notify import check_slack
from tickguard.settings import Settings
from tickguard.sinks.redis_stream import redis_client

log = logging.getLogger(__name__)

Job = tuple[str, Awaitable[CheckResult | list[CheckResult]]]
CPU_BOUND = frozenset({"entrypoints", "calendar"})
"""Checks that compute rather than wait (a child importing Prefect; building the XKRX
calendar, ~3.6 s of CPU): on a loaded host they get ``import_timeout_s``, not ``timeout_s``."""


async def _bounded(name: str, job: Awaitable[Any], timeout_s: float) -> list[CheckResult]:
    try:
        result = await asyncio.wait_for(job, timeout_s)
    except TimeoutError:
        return [failed(name, f"no answer within {timeout_s:.1f} s", "whatever it waits on hangs")]
    except Exception as exc:  # a crashed check is a failed check, never a crashed preflight
        log.warning("preflight check %s crashed: %s", name, type(exc).__name__)
        return [failed(name, f"check crashed: {type(exc).__name__}: {exc}"[:300], "see the log")]
    return result if isinstance(result, list) else [result]


def _thread(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    return asyncio.to_thread(fn, *args)


def _url(settings: Settings, which: str) -> str:
    """The configured URL, else the embedded stack's (started if it is not running)."""
    from tickguard import stack

    resolve = stack.resolve_database_url if which == "db" else stack.resolve_redis_url
    return resolve(settings)


async def run_preflight(
    project_dir: Path,
    *,
    settings: Settings | None = None,
    symbols: Sequence[str] | None = None,
    now: datetime | None = None,
    calendar: TradingCalendar | None = None,
) -> PreflightReport:
    """Every check; ``settings`` None reads (and checks) them from the environment."""
    started = time.monotonic()
    first: list[CheckResult] = []
    if settings is None:
        result, settings = check_settings()
        first.append(result)
    timeout = settings.preflight.timeout_s if settings else 8.0
    imports = settings.preflight.import_timeout_s if settings else 20.0
    jobs: list[Job] = [
        ("entrypoints", code.check_entrypoints(project_dir, imports)),
        ("dependencies", _thread(code.check_dependencies, project_dir)),
    ]
    if settings is not None:
        jobs += _settings_jobs(settings, project_dir, symbols, now or datetime.now(UTC), calendar)
    results = await asyncio.gather(
        *(_bounded(n, j, imports if n in CPU_BOUND else timeout) for n, j in jobs)
    )
    checks = first + [c for group in results for c in group]
    report = PreflightReport(checks, time.monotonic() - started)
    log.info("preflight: %s in %.1fs", report.verdict.value, report.elapsed_s)
    return report


def _settings_jobs(
    settings: Settings,
    project_dir: Path,
    symbols: Sequence[str] | None,
    now: datetime,
    calendar: TradingCalendar | None,
) -> list[Job]:
    chosen = list(symbols) if symbols else code.deployed_symbols(project_dir)
    subscriptions = len(chosen) * len(DEFAULT_CHANNELS) * len(brokers.configured(settings))
    return [
        ("calendar", _thread(check_calendar, now, calendar)),
        ("postgres", _postgres(settings)),
        ("redis", _redis(settings)),
        ("disk", _thread(host.check_disk, settings, subscriptions)),
        ("memory", _thread(host.check_memory, settings, host.CGROUP_MEMORY_MAX)),
        ("cpu", _thread(host.check_cpu, settings)),
        ("slack", _thread(check_slack, settings.slack)),
        ("brokers", _brokers(settings, chosen, now)),
    ]


async def _postgres(settings: Settings) -> CheckResult:
    url = await asyncio.to_thread(_url, settings, "db")
    return await asyncio.to_thread(stores.check_postgres, url)


async def _redis(settings: Settings) -> list[CheckResult]:
    url = await asyncio.to_thread(_url, settings, "redis")
    return await asyncio.to_thread(stores.check_redis, settings, url)


async def _brokers(settings: Settings, symbols: list[str], now: datetime) -> list[CheckResult]:
    """Per configured broker: plan, REST + clock, and each app key — all at once."""
    chosen = brokers.configured(settings)
    if not chosen:
        return []
    day = now.astimezone(KST).date()
    url = await asyncio.to_thread(_url, settings, "redis")
    lock_redis = redis_client(url, 2.0)
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as http:
            jobs: list[Awaitable[Any]] = []
            for broker in chosen:
                jobs.append(asyncio.to_thread(brokers.check_plan, settings, broker, symbols))
                jobs.append(brokers.check_rest(settings, broker, http))
                for cred in REGISTRY[broker].credentials(settings):
                    probe = brokers.check_key(
                        settings, broker, cred, symbols[0] if symbols else "005930",
                        http=http, redis=lock_redis, day=day,
                    )  # fmt: skip
                    jobs.append(probe)
            results = await asyncio.gather(*jobs)
    finally:
        await lock_redis.aclose()
    return [c for r in results for c in (r if isinstance(r, list) else [r])]

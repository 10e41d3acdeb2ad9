"""Broker simulators for ``tickguard up`` when no broker credentials are configured.

The collectors then run exactly as in production — same flows, same deployments — with
their settings pointed at the simulators (``TICKGUARD_<BROKER>__WS_URL``/``REST_URL`` and a
simulator app key in the worker's environment), and the session window replaced by the
simulated market's own: it opens at 09:00 session time and closes at 15:30, ``speed``
times faster than the wall clock.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from tickguard.models import KST, Broker
from tickguard.settings import Settings

log = logging.getLogger(__name__)

SIM_START = dtime(9, 0)
SIM_SESSION = timedelta(hours=6, minutes=30)


def brokers_without_credentials(settings: Settings) -> list[Broker]:
    return [b for b in Broker if not getattr(settings, b.value).apps]


def session_end(speed: float, now: datetime | None = None) -> datetime:
    """Wall-clock instant at which a simulator started now reaches 15:30."""
    return (now or datetime.now(UTC)) + SIM_SESSION / speed


async def start_simulators(
    stack: contextlib.AsyncExitStack, brokers: list[Broker], symbols: list[str], speed: float,
    data_dir: Path,
) -> dict[str, str]:  # fmt: skip
    """Start one simulator per broker inside ``stack``; the worker env that points at them."""
    from tickguard.sim.kis import KisSimConfig, KisSimulator
    from tickguard.sim.kiwoom import KiwoomSimConfig, KiwoomSimulator
    from tickguard.sim.market import MarketConfig
    from tickguard.sim.universe import profiles_for

    market = MarketConfig(day=datetime.now(KST).date(), symbols=profiles_for(symbols), seed=0)
    env: dict[str, str] = {}
    for broker in brokers:
        truth = data_dir / "sim" / f"{broker.value}-truth-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        if broker is Broker.KIS:
            sim: KisSimulator | KiwoomSimulator = await stack.enter_async_context(
                KisSimulator(KisSimConfig(market=market, speed=speed, start_at=SIM_START,
                                          truth_dir=truth))
            )  # fmt: skip
        else:
            sim = await stack.enter_async_context(
                KiwoomSimulator(KiwoomSimConfig(market=market, speed=speed, start_at=SIM_START,
                                                truth_dir=truth))
            )  # fmt: skip
        prefix = f"TICKGUARD_{broker.value.upper()}__"
        app = {"name": f"sim-{broker.value}", "app_key": f"sim-{broker.value}-key",
               "app_secret": "sim-secret"}  # fmt: skip
        env |= {
            f"{prefix}WS_URL": sim.ws_url,
            f"{prefix}REST_URL": sim.rest_url,
            f"{prefix}APPS": json.dumps([app]),
        }
        log.warning(
            "no %s credentials configured: collecting from the built-in %s SIMULATOR at %s "
            "(speed x%g) — this is not market data", broker.value, broker.value, sim.ws_url, speed,
        )  # fmt: skip
    return env

"""Which simulator stands in for which broker in a drill (one entry per broker).

A rig builds the simulator's config from the drill's knobs, and points the collector's
broker settings at the running simulator. Base knobs of the drills live here: KIS frees an
app key at once after a session ends (``slot_hold_s`` 0, see the scenarios module) and
sends PINGPONG every 10 s; Kiwoom PINGs every 10 s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from datetime import time as dtime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from tickguard.brokers.registry import REGISTRY
from tickguard.models import Broker
from tickguard.settings import AppCredential, Settings
from tickguard.sim.faults import FaultSchedule
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.kiwoom import KiwoomSimConfig, KiwoomSimulator
from tickguard.sim.market import MarketConfig
from tickguard.sim.universe import default_symbols, profiles_for


@dataclass(frozen=True, slots=True)
class Rig:
    broker: Broker
    simulator: Callable[[Any], Any]
    """Simulator class: an async context manager with rest_url, ws_url, counters."""
    config: Callable[..., Any]
    defaults: Mapping[str, Any]
    hold_field: str | None
    """The config field ``--slot-hold-s`` sets (None: the broker kicks instead of holding)."""


RIGS: Mapping[Broker, Rig] = {
    Broker.KIS: Rig(
        Broker.KIS, KisSimulator, KisSimConfig,
        {"slot_hold_s": 0.0, "pingpong_interval_s": 10.0, "pingpong_timeout_s": 10.0},
        "slot_hold_s",
    ),
    Broker.KIWOOM: Rig(
        Broker.KIWOOM, KiwoomSimulator, KiwoomSimConfig, {"ping_interval_s": 10.0}, None
    ),
}  # fmt: skip


def sim_config(
    rig: Rig,
    *,
    day: date,
    symbols: int,
    seed: int,
    speed: float,
    faults: tuple[str, ...],
    truth_dir: Path,
    overrides: Mapping[str, Any],
    slot_hold_s: float | None,
) -> Any:
    """The simulator config of one drill run."""
    market = MarketConfig(day=day, symbols=profiles_for(default_symbols(symbols)), seed=seed)
    extra = {**rig.defaults, **overrides}
    if slot_hold_s is not None and rig.hold_field is not None:
        extra[rig.hold_field] = slot_hold_s
    return rig.config(
        market=market, speed=speed, start_at=dtime(9, 0),
        faults=FaultSchedule.parse(faults, seed=seed), truth_dir=truth_dir, **extra,
    )  # fmt: skip


def broker_settings(
    rig: Rig, base: Settings, sim: Any, symbols: int, channels: int
) -> dict[str, BaseModel]:
    """``{"kis": KisSettings(...)}``-style update pointing the broker at the simulator."""
    name = rig.broker.value
    current: BaseModel = getattr(base, name)
    cap = REGISTRY[rig.broker].max_registrations(base)
    keys = max(1, math.ceil(symbols * channels / cap))
    apps = [
        AppCredential(
            name=f"drill{i}", app_key=SecretStr(f"drill-app-{i}"), app_secret=SecretStr(f"s{i}")
        )
        for i in range(keys)
    ]
    fields = {**current.model_dump(), "rest_url": sim.rest_url, "ws_url": sim.ws_url, "apps": apps}
    return {name: type(current)(**fields)}

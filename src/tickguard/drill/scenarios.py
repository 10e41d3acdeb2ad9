"""Drill scenarios as data: simulator faults and knobs, collector settings overrides.

Fault specs use the simulator's grammar (:mod:`tickguard.sim.faults`). Connection faults run
on wall time, market time runs at ``--speed``. Adding a scenario is adding an entry here.

KIS's ``slot_hold_s`` is how long the simulated broker keeps an app key's slot after a
session ends (the real figure is UNCONFIRMED). The drills use 0 (see
:mod:`tickguard.drill.rigs`): the simulator itself ends the session in these faults, so the
broker knows the slot is free. ``--slot-hold-s`` shows what a
longer hold costs (OPSP8996 answers and backoff on every drop).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    faults: tuple[str, ...] = ()
    sim: Mapping[str, Any] = field(default_factory=dict)
    """Overrides of the simulator config (fields every broker's simulator has, e.g. speed
    knobs); broker-specific base knobs live in :mod:`tickguard.drill.rigs`."""
    stream: Mapping[str, Any] = field(default_factory=dict)
    """Overrides of StreamSettings for the collector under test."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Knobs of a scenario with its own runner (``runner`` names it, e.g. ``incident``)."""


SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {
        "calm": Scenario("calm", "no faults: the baseline", ()),
        "flap": Scenario(
            "flap",
            "TCP drop without a close frame every 3–5 s (the incident's KIS feed)",
            ("flap:3-5",),
        ),
        "malformed": Scenario(
            "malformed",
            "1 % of data frames preceded by a malformed frame; a record that grows a field",
            ("malformed:0.01", "grow:H0STASP0@5x20"),
        ),
        "incident-2026-01-19": Scenario(
            "incident-2026-01-19",
            "the outage: collector crash-looping at the open, flaps every 3–5 s, a 10-minute "
            "collector outage, ticks lost inside live connections; then the post-close backfill",
            ("flap:3-5", "malformed:0.01,corrupt"),
            extra={"runner": "incident", "crash_loop_min": 2, "outage_at_min": 6, "outage_min": 10},
        ),
        "gaps": Scenario(
            "gaps",
            "completeness on a scripted session: a drop, a silent socket and ticks lost in a "
            "live connection must alarm (within 2 min, one Slack message + its resolution); "
            "a halted symbol, a quiet symbol and a holiday must not",
            extra={"runner": "gaps"},
        ),
        "silent": Scenario(
            "silent",
            "data stops for 12 s with the socket open (PINGPONG continues), every 40 s",
            ("silent:12@10/40",),
        ),
    }
)


def scenario(name: str) -> Scenario:
    """The named scenario; KeyError lists the known names."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; one of: {', '.join(SCENARIOS)}") from None

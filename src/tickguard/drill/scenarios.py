"""Drill scenarios as data: simulator faults and knobs, collector settings overrides.

Fault specs use the simulator's grammar (:mod:`tickguard.sim.faults`). Connection faults run
on wall time, market time runs at ``--speed``; ``{mid}`` in a spec is the wall second of
mid-session (a record that grows a field halfway through). Adding a scenario is adding an
entry here. Every scenario runs a whole time-scaled session and then the backfill, and
reports the keys of :data:`MUST_BE_ZERO` (issue 9's must-hold).

A scenario with its own runner names it in ``extra["runner"]`` as ``"module:function"``
(``async def run(settings, opts, *, admin_url, redis_url) -> dict``), imported lazily; a
scenario whose servers misbehave names an environment factory in ``environment`` (see
:mod:`tickguard.drill.env_api`).

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

BOTH = ("kis", "kiwoom")
MUST_BE_ZERO = (
    "trades_missing_final",
    "trades_duplicated",
    "trades_lost_after_receipt",
    "false_alarms",
    "session_conflicts",
)
"""Report keys every scenario must end with at 0 (besides every injected gap detected)."""
REPORT_KEYS = (
    *MUST_BE_ZERO[:3],
    "gaps_injected",
    "gaps_detected",
    *MUST_BE_ZERO[3:],
    "peak_rss_mb",
)
"""Keys every scenario's report carries (a scenario adds its own)."""


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
    """Knobs of a scenario with its own runner (``runner``: ``"module:function"``)."""
    environment: str | None = None
    """``"module:function"`` of the environment factory (:mod:`tickguard.drill.env_api`)."""
    brokers: tuple[str, ...] = BOTH
    """The brokers ``drill --all`` runs it for."""
    proves: tuple[str, ...] = ()
    """Report keys that must be positive: the fault really happened."""
    rss_growth_mb: float | None = None
    """Bound on peak RSS above the RSS at first data (the outages and the slow sink)."""

    def fault_specs(self, minutes: float, speed: float) -> tuple[str, ...]:
        """The fault specs with ``{mid}`` set to the wall second of mid-session."""
        mid = round(minutes * 60 / speed / 2, 1)
        return tuple(f.replace("{mid}", str(mid)) for f in self.faults)


_ENV = "tickguard.drill.environments:"
_KILL = "tickguard.drill.kill:run_kill_drill"
SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {
        "calm": Scenario("calm", "no faults: the baseline", ()),
        "flap": Scenario(
            "flap",
            "TCP drop without a close frame every 3–5 s (the incident's KIS feed)",
            ("flap:3-5",),
            proves=("gaps_injected",),
        ),
        "silent": Scenario(
            "silent",
            "data stops for 12 s with the socket open (PINGPONG continues), every 40 s",
            ("silent:12@10/40",),
            proves=("gaps_injected",),
        ),
        "malformed": Scenario(
            "malformed",
            "1 % of data frames preceded by a malformed frame; a record that grows a field",
            ("malformed:0.01", "grow:H0STASP0@5x20", "grow:0D@5x20"),
            brokers=("kis",),
            proves=("frames_quarantined",),
        ),
        "schema-drift": Scenario(
            "schema-drift",
            "mid-session every trade and book record grows a field (KIS: one more trailing "
            "field; Kiwoom: an unknown FID); nothing may be lost or quarantined for it",
            ("grow:H0STCNT0@{mid}", "grow:H0STASP0@{mid}", "grow:0B@{mid}", "grow:0D@{mid}"),
            proves=("grown_frames",),
        ),
        "gaps": Scenario(
            "gaps",
            "completeness: a drop, a silent socket and ticks lost in a live connection must "
            "alarm (within 2 min, one Slack message + its resolution); a halted symbol, a "
            "quiet symbol and a holiday must not",
            extra={"runner": "tickguard.quality.gaps_drill:run_gaps_drill"},
            brokers=("kis",),
            proves=("gaps_injected",),
        ),
        "incident-2026-01-19": Scenario(
            "incident-2026-01-19",
            "the outage: collector crash-looping at the open, flaps every 3–5 s, a 10-minute "
            "collector outage, ticks lost inside live connections; then the post-close backfill",
            ("flap:3-5", "malformed:0.01,corrupt"),
            extra={
                "runner": "tickguard.backfill.drill:run_incident_drill",
                "crash_loop_min": 2,
                "outage_at_min": 6,
                "outage_min": 10,
            },
            proves=("gaps_injected", "silent_losses"),
        ),
        "both": Scenario(
            "both",
            "the dual feed: KIS and Kiwoom collect one market at once, KIS flapping every "
            "3–5 s; Kiwoom fills KIS's windows live",
            ("flap:3-5",),
            extra={"runner": "tickguard.drill.dual:run_dual_drill"},
            brokers=("kis",),
            proves=("gaps_injected",),
        ),
        "redis-outage": Scenario(
            "redis-outage",
            "Redis down 10 minutes mid-session: the collector spools to disk, then replays",
            environment=_ENV + "redis_outage",
            extra={"outage_min": 10},
            brokers=("kis",),
            rss_growth_mb=200.0,
        ),
        "postgres-outage": Scenario(
            "postgres-outage",
            "PostgreSQL down 10 minutes mid-session: the stream holds, persist catches up",
            environment=_ENV + "postgres_outage",
            extra={"outage_min": 10},
            brokers=("kis",),
            rss_growth_mb=200.0,
        ),
        "slow-sink": Scenario(
            "slow-sink",
            "PostgreSQL slowed to a crawl while the feed bursts",
            environment=_ENV + "slow_sink",
            brokers=("kis",),
            rss_growth_mb=200.0,
        ),
        "kill-collector": Scenario(
            "kill-collector",
            "the collector SIGKILLed mid-session; Prefect restarts it",
            extra={"runner": _KILL, "kill": "collector"},
            brokers=("kis",),
        ),
        "kill-persist": Scenario(
            "kill-persist",
            "persist SIGKILLed mid-session; restarted, it stores everything once",
            extra={"runner": _KILL, "kill": "persist"},
            brokers=("kis",),
        ),
    }
)


def scenario(name: str) -> Scenario:
    """The named scenario; KeyError lists the known names."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; one of: {', '.join(SCENARIOS)}") from None


def verdict(sc: Scenario, report: dict[str, Any]) -> list[str]:
    """What fails issue 9's must-hold in ``report`` (empty: PASS)."""
    if "error" in report:
        return [f"error: {report['error']}"]
    fails = [f"{k}={report.get(k)}" for k in MUST_BE_ZERO if report.get(k) != 0]
    injected, detected = report.get("gaps_injected"), report.get("gaps_detected")
    if injected is None or detected != injected:
        fails.append(f"gaps detected {detected} of {injected}")
    fails += [f"{k}={report.get(k)} (must be > 0)" for k in sc.proves if not report.get(k)]
    if report.get("persist_caught_up") is False:
        fails.append("persist did not catch up")
    if sc.rss_growth_mb is not None:
        growth = float(report.get("peak_rss_mb", 0.0)) - float(report.get("rss_start_mb", 0.0))
        if growth > sc.rss_growth_mb:
            fails.append(f"RSS grew {growth:.0f} MB > {sc.rss_growth_mb:.0f} MB")
    return fails

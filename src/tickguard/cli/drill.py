"""``tickguard drill --scenario NAME`` / ``tickguard drill --all``: fault drills against
ground truth.

Runs the simulator, the collector, the Redis stream and persist against the configured
PostgreSQL/Redis (scratch database and key prefix, dropped afterwards), for ``--minutes``
simulated minutes at ``--speed``, then the backfill, then the judgement. ``--json`` prints
one object; otherwise one line per key. With one scenario the exit code is 0 when the drill
ran, whatever it found (the report is the verdict). ``--all`` runs every scenario (each on
the brokers it applies to), prints one table and exits 0 only when every row passes issue
9's must-hold; a scenario that errors is a FAIL row.

A scenario with its own runner names it ``"module:function"`` in ``extra["runner"]``; it is
imported only when that scenario runs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Annotated, Any

import typer

from tickguard.cli import app
from tickguard.cli.collect import parse_broker

ALL_MINUTES = 390.0
ALL_SPEED = 240.0
ALL_SYMBOLS = 1
DEFAULT_RUNNER = "tickguard.drill.runner:run_drill"
DUAL_RUNNER = "tickguard.drill.dual:run_dual_drill"


@app.command("drill")
def drill(
    scenario: Annotated[
        str,
        typer.Option(
            help="calm | flap | silent | malformed | schema-drift | gaps | incident-2026-01-19 "
            "| both | redis-outage | postgres-outage | slow-sink | kill-collector | kill-persist"
        ),
    ] = "calm",
    broker: Annotated[
        str, typer.Option(help="Broker to drill (kis, kiwoom, or both: the dual feed).")
    ] = "kis",
    faulty: Annotated[
        str, typer.Option(help="With --broker both: the broker the faults hit (kis, kiwoom).")
    ] = "kis",
    symbols: Annotated[
        int | None,
        typer.Option(min=1, max=2000, help=f"Symbols (default 20; --all: {ALL_SYMBOLS})."),
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(
            min=0.05, help=f"Simulated minutes (default 10; --all: {ALL_MINUTES:g}, a session)."
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            max=1000.0,
            help=f"Sim seconds per wall second (default 1; --all: {ALL_SPEED:g}).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Market and fault seed.")] = 0,
    slot_hold_s: Annotated[
        float | None,
        typer.Option("--slot-hold-s", min=0.0, help="Broker's app-key hold after a session ends."),
    ] = None,
    day: Annotated[
        str | None,
        typer.Option(help="Trading day YYYY-MM-DD (default: today's or the next trading day)."),
    ] = None,
    run_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help=f"Run every scenario (a whole {ALL_MINUTES:g}-minute session at speed "
            f"{ALL_SPEED:g}, {ALL_SYMBOLS} symbol by default: a flap run with its backfill took "
            "3 min on this 2-core box at load 6, so the set is ~50 min; on a busier box the "
            "live path falls behind and the backfill grows: lower --minutes) and print one "
            "table; exit 1 when any fails.",
        ),
    ] = False,
    only: Annotated[
        str | None, typer.Option(help="With --all: a comma-separated subset of scenarios.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run a drill and print what was sent, stored, lost, duplicated and how fast it healed."""
    from tickguard.cli.params import trading_day
    from tickguard.drill.scenarios import SCENARIOS

    the_day = trading_day(day) if day else None
    if run_all:
        names = _subset(only, list(SCENARIOS))
        size = (symbols or ALL_SYMBOLS, minutes or ALL_MINUTES, speed or ALL_SPEED)
        rows = run_set(
            names, the_day, symbols=size[0], minutes=size[1], speed=size[2], seed=seed,
            slot_hold_s=slot_hold_s, on_row=_progress,
        )  # fmt: skip
        passed = all(r["pass"] for r in rows)
        if as_json:
            head = {"passed": passed, "symbols": size[0], "minutes": size[1], "speed": size[2]}
            typer.echo(json.dumps({**head, "scenarios": rows}))
        else:
            typer.echo(table(rows))
        raise typer.Exit(0 if passed else 1)
    if scenario not in SCENARIOS:
        raise typer.BadParameter(
            f"unknown scenario {scenario!r}; one of: {', '.join(SCENARIOS)}",
            param_hint="--scenario",
        )
    dual_feed = broker.lower() == "both"
    chosen = parse_broker(faulty if dual_feed else broker)
    from tickguard.drill.runner import DrillOptions
    from tickguard.errors import TickguardError

    opts_one = DrillOptions(
        SCENARIOS[scenario], chosen, symbols or 20, minutes or 10.0, speed or 1.0, seed,
        slot_hold_s, the_day,
    )  # fmt: skip
    try:
        report = asyncio.run(_run_one(opts_one, dual_feed))
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report))
    else:
        for key, value in _lines(report):
            typer.echo(f"{key:34} {value}")


def _progress(row: dict[str, Any]) -> None:
    """One line per finished run on stderr (the table or JSON comes at the end)."""
    verdict = "PASS" if row["pass"] else "FAIL " + "; ".join(row["fails"])
    wall = row["report"].get("wall_s")
    typer.echo(f"drill {row['scenario']} {row['broker']}: {verdict} ({wall} s)", err=True)


def _subset(only: str | None, known: list[str]) -> list[str]:
    if not only:
        return known
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise typer.BadParameter(
            f"unknown scenario(s) {', '.join(unknown)}; one of: {', '.join(known)}",
            param_hint="--only",
        )
    return names


def runner_of(scenario: Any, dual_feed: bool) -> str:
    """The ``"module:function"`` that runs ``scenario``."""
    if dual_feed:
        return DUAL_RUNNER
    return str(scenario.extra.get("runner", DEFAULT_RUNNER))


async def _run_one(opts: Any, dual_feed: bool = False) -> dict[str, Any]:
    from tickguard.drill.env_api import resolve
    from tickguard.settings import get_settings
    from tickguard.stack import resolve_database_url, resolve_redis_url

    settings = get_settings()
    admin, redis_url = resolve_database_url(settings), resolve_redis_url(settings)
    run = resolve(runner_of(opts.scenario, dual_feed))
    report: dict[str, Any] = await run(settings, opts, admin_url=admin, redis_url=redis_url)
    return report


def run_set(
    names: list[str],
    day: date | None,
    *,
    symbols: int,
    minutes: float,
    speed: float,
    seed: int = 0,
    slot_hold_s: float | None = None,
    scenarios: Mapping[str, Any] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Every named scenario on each of its brokers, one after the other, on one trading day;
    one row each (a scenario that raises is a FAIL row carrying its error). ``scenarios``:
    where the names are looked up (default: the registered set)."""
    from tickguard.drill.runner import DrillOptions, current_or_next_trading_day
    from tickguard.drill.scenarios import SCENARIOS, verdict
    from tickguard.models import Broker

    the_day = day or current_or_next_trading_day()
    known = SCENARIOS if scenarios is None else scenarios
    rows: list[dict[str, Any]] = []
    for name in names:
        sc = known[name]
        for broker in sc.brokers:
            opts = DrillOptions(
                sc, Broker(broker), symbols, minutes, speed, seed, slot_hold_s, the_day
            )
            started = time.monotonic()
            try:
                report = asyncio.run(_run_one(opts))
            except Exception as exc:  # a scenario that errors is a FAIL row, not a crash
                report = {"error": f"{type(exc).__name__}: {exc}"}
            report.setdefault("wall_s", round(time.monotonic() - started, 1))
            fails = verdict(sc, report)
            label = "both" if report.get("broker") == "both" else broker
            rows.append({"scenario": name, "broker": label, "pass": not fails,
                         "fails": fails, "report": report})  # fmt: skip
            if on_row is not None:
                on_row(rows[-1])
    return rows


COLUMNS = (
    ("scenario", 20), ("broker", 7), ("sent", 8), ("stored", 8), ("missing", 7), ("dup", 4),
    ("lost", 5), ("gaps inj/det", 12), ("false", 5), ("confl", 5), ("RSS MB", 7),
    ("wall s", 7), ("verdict", 7),
)  # fmt: skip


def _cells(row: dict[str, Any]) -> list[str]:
    r = row["report"]

    def g(key: str) -> str:
        value = r.get(key)
        return "-" if value is None else str(value)

    stored = r.get("trades_stored_before_backfill", r.get("trades_stored"))
    return [
        row["scenario"], row["broker"], g("trades_sent"), "-" if stored is None else str(stored),
        g("trades_missing_final"), g("trades_duplicated"), g("trades_lost_after_receipt"),
        f"{g('gaps_injected')}/{g('gaps_detected')}", g("false_alarms"), g("session_conflicts"),
        g("peak_rss_mb"), g("wall_s"), "PASS" if row["pass"] else "FAIL",
    ]  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    """The drill set as one fixed-width table, each FAIL's reasons under it."""
    lines = [" ".join(f"{name:>{w}}" for name, w in COLUMNS)]
    for row in rows:
        lines.append(" ".join(f"{c:>{w}}" for c, (_n, w) in zip(_cells(row), COLUMNS, strict=True)))
        lines.extend(f"{'':>20}   ! {reason}" for reason in row["fails"])
    passed = sum(1 for r in rows if r["pass"])
    lines.append(f"{passed}/{len(rows)} passed")
    return "\n".join(lines)


def _lines(report: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Flat ``key value`` lines; a dual drill's per-broker sub-reports as ``kis.key``."""
    out: list[tuple[str, Any]] = []
    for key, value in report.items():
        if isinstance(value, dict) and key in ("kis", "kiwoom"):
            out.extend(_lines(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value))
    return out

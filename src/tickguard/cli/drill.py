"""``tickguard drill --scenario NAME``: run a fault drill and report against ground truth.

Runs the simulator, the collector, the Redis stream and persist against the configured
PostgreSQL/Redis (scratch database and key prefix, dropped afterwards), for ``--minutes``
simulated minutes at ``--speed``. ``--json`` prints one object; otherwise one line per key.
The exit code is 0 when the drill ran, whatever it found (the report is the verdict).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from tickguard.cli import app
from tickguard.cli.collect import parse_broker


@app.command("drill")
def drill(
    scenario: Annotated[
        str, typer.Option(help="calm | flap | silent | malformed | incident-2026-01-19 | gaps")
    ] = "calm",
    broker: Annotated[
        str, typer.Option(help="Broker to drill (kis, kiwoom, or both: the dual feed).")
    ] = "kis",
    faulty: Annotated[
        str, typer.Option(help="With --broker both: the broker the faults hit (kis, kiwoom).")
    ] = "kis",
    symbols: Annotated[int, typer.Option(min=1, max=2000, help="Symbols (default universe).")] = 20,
    minutes: Annotated[float, typer.Option(min=0.05, help="Simulated minutes to run.")] = 10.0,
    speed: Annotated[
        float, typer.Option(min=0.1, max=1000.0, help="Sim seconds per wall second.")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Market and fault seed.")] = 0,
    slot_hold_s: Annotated[
        float | None,
        typer.Option("--slot-hold-s", min=0.0, help="Broker's app-key hold after a session ends."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run a drill and print what was sent, stored, lost, duplicated and how fast it healed."""
    from tickguard.drill.scenarios import SCENARIOS

    if scenario not in SCENARIOS:
        raise typer.BadParameter(
            f"unknown scenario {scenario!r}; one of: {', '.join(SCENARIOS)}",
            param_hint="--scenario",
        )
    dual_feed = broker.lower() == "both"
    chosen = parse_broker(faulty if dual_feed else broker)
    from tickguard.drill.dual import run_dual_drill
    from tickguard.drill.runner import DrillOptions, run_drill
    from tickguard.errors import TickguardError
    from tickguard.settings import get_settings
    from tickguard.stack import resolve_database_url, resolve_redis_url

    opts = DrillOptions(SCENARIOS[scenario], chosen, symbols, minutes, speed, seed, slot_hold_s)
    try:
        settings = get_settings()
        admin, redis_url = resolve_database_url(settings), resolve_redis_url(settings)
        if dual_feed:  # faults on ``chosen`` only
            run = run_dual_drill(settings, opts, admin_url=admin, redis_url=redis_url)
        elif SCENARIOS[scenario].extra.get("runner") == "incident":
            from tickguard.backfill.drill import run_incident_drill

            run = run_incident_drill(settings, opts, admin_url=admin, redis_url=redis_url)
        elif SCENARIOS[scenario].extra.get("runner") == "gaps":
            from tickguard.quality.gaps_drill import run_gaps_drill

            run = run_gaps_drill(settings, opts, admin_url=admin, redis_url=redis_url)
        else:
            run = run_drill(settings, opts, admin_url=admin, redis_url=redis_url)
        report = asyncio.run(run)
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report))
    else:
        for key, value in _lines(report):
            typer.echo(f"{key:34} {value}")


def _lines(report: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Flat ``key value`` lines; a dual drill's per-broker sub-reports as ``kis.key``."""
    out: list[tuple[str, Any]] = []
    for key, value in report.items():
        if isinstance(value, dict) and key in ("kis", "kiwoom"):
            out.extend(_lines(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value))
    return out

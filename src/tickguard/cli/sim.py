"""``tickguard sim kis|kiwoom``: run a broker simulator on loopback until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tickguard.cli.params import trading_day

if TYPE_CHECKING:
    from tickguard.sim.faults import FaultSchedule
    from tickguard.sim.market import MarketConfig

sim_app = typer.Typer(help="Run a broker simulator (loopback only).", no_args_is_help=True)


def _symbols(value: str) -> list[str]:
    """``20`` → the default universe of 20 symbols; ``005930,000660`` → those codes."""
    from tickguard.sim.universe import default_symbols

    text = value.strip()
    if text.isdigit() and len(text) < 6:
        return default_symbols(int(text))
    codes = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in codes if not re.fullmatch(r"Q?\d{6}", c)]
    if not codes or bad:
        raise typer.BadParameter(f"expected a count or 6-digit codes, got {bad or value!r}")
    return codes


def _start(value: str) -> time:
    try:
        if len(value) != 5:
            raise ValueError(value)
        return time.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected HH:MM, got {value!r}") from None


# Options both simulators take (typer reads them from the Annotated metadata).
Host = Annotated[str, typer.Option(help="Interface to listen on.")]
WsPort = Annotated[int, typer.Option("--port", help="Websocket port (0 = any free port).")]
RestPort = Annotated[int, typer.Option("--rest-port", help="REST port (0 = any free port).")]
Symbols = Annotated[str, typer.Option(help="A count (default universe) or comma-separated codes.")]
Seed = Annotated[int, typer.Option(help="Market seed: same seed, same tape.")]
Speed = Annotated[float, typer.Option(min=0.001, help="Session seconds per wall second.")]
Start = Annotated[str, typer.Option(help="Session time to start at (HH:MM, KST).")]
Day = Annotated[str | None, typer.Option(help="Trading day YYYY-MM-DD (default: today, KST).")]
Faults = Annotated[list[str] | None, typer.Option("--fault", help="Fault spec, repeatable.")]
TruthDir = Annotated[Path | None, typer.Option("--truth-dir", help="Truth directory.")]


@sim_app.command("kis")
def kis(
    host: Host = "127.0.0.1",
    port: WsPort = 0,
    rest_port: RestPort = 0,
    symbols: Symbols = "20",
    seed: Seed = 0,
    speed: Speed = 1.0,
    start: Start = "09:00",
    day: Day = None,
    fault: Faults = None,
    truth_dir: TruthDir = None,
    pingpong_s: float = typer.Option(10.0, "--pingpong-s", min=0.1, help="PINGPONG interval."),
    slot_hold_s: float = typer.Option(1.0, "--slot-hold-s", min=0.0, help="App-key hold."),
) -> None:
    """Serve KIS's REST auth and websocket protocol from a seeded market.

    Faults, e.g.: flap:3-5 · silent:8@20/60 · malformed:0.01 (or 0.01,corrupt) ·
    grow:H0STASP0@10x5 · halt:005930@10:00-10:30
    """
    from tickguard.sim.kis import KisSimConfig, KisSimulator

    market, faults = _market(symbols, seed, day, fault)
    config = KisSimConfig(
        market=market, host=host, ws_port=port, rest_port=rest_port, speed=speed,
        start_at=_start(start), faults=faults, truth_dir=truth_dir,
        pingpong_interval_s=pingpong_s, pingpong_timeout_s=pingpong_s, slot_hold_s=slot_hold_s,
    )  # fmt: skip
    _run_until_signalled(lambda: KisSimulator(config))


def _market(
    symbols: str, seed: int, day: str | None, fault: list[str] | None
) -> tuple[MarketConfig, FaultSchedule]:
    """The seeded market and the fault schedule both simulators are built from."""
    from tickguard.sim.faults import FaultSchedule, FaultSpecError
    from tickguard.sim.market import MarketConfig
    from tickguard.sim.universe import profiles_for

    try:
        faults = FaultSchedule.parse(fault or [], seed=seed)
    except FaultSpecError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from None
    market = MarketConfig(day=trading_day(day), symbols=profiles_for(_symbols(symbols)), seed=seed)
    return market, faults


def _run_until_signalled(make: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(make))


async def _serve(make: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGTERM too: the truth summary gets written
        loop.add_signal_handler(sig, stop.set)
    async with make() as sim:
        typer.echo(f"REST {sim.rest_url}")
        typer.echo(f"WS   {sim.ws_url}")
        typer.echo(f"truth {sim.truth_dir}")
        try:
            await stop.wait()
        finally:
            typer.echo(f"stopped: {sim.counters.frames_sent} frames sent", err=True)


@sim_app.command("kiwoom")
def kiwoom(
    host: Host = "127.0.0.1",
    port: WsPort = 0,
    rest_port: RestPort = 0,
    symbols: Symbols = "20",
    seed: Seed = 0,
    speed: Speed = 1.0,
    start: Start = "09:00",
    day: Day = None,
    fault: Faults = None,
    truth_dir: TruthDir = None,
    ping_s: float = typer.Option(10.0, "--ping-s", min=0.05, help="PING interval."),
    page_size: int = typer.Option(900, "--page-size", min=1, help="Chart rows per page."),
    rate: int = typer.Option(5, "--rate", min=1, help="Chart requests/s before 1700."),
) -> None:
    """Serve Kiwoom's REST (token, ka10079/ka10080) and websocket protocol from a seeded market.

    Faults, e.g.: flap:3-5 · silent:8@20/60 · malformed:0.01 (or 0.01,corrupt) ·
    grow:0B@10x5 · halt:122630@10:00-10:30
    """
    from tickguard.sim.kiwoom import KiwoomSimConfig, KiwoomSimulator
    from tickguard.sim.kiwoom_rest import KiwoomRestRules

    market, faults = _market(symbols, seed, day, fault)
    config = KiwoomSimConfig(
        market=market, host=host, ws_port=port, rest_port=rest_port, speed=speed,
        start_at=_start(start), faults=faults, truth_dir=truth_dir, ping_interval_s=ping_s,
        rest=KiwoomRestRules(page_size=page_size, max_requests=rate),
    )  # fmt: skip
    _run_until_signalled(lambda: KiwoomSimulator(config))


@sim_app.command("bench")
def bench(
    symbols: int = typer.Option(20, min=1, help="Symbols in the market (up to 20 subscribed)."),
    speed: float = typer.Option(60.0, min=0.001, help="Session seconds per wall second."),
    seconds: float = typer.Option(10.0, min=1.0, help="Wall seconds to measure."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Measure the records/s the KIS simulator delivers to one client in another process."""
    import json
    import tempfile

    from tickguard.sim.bench import as_dict, run_bench

    with tempfile.TemporaryDirectory(prefix="tickguard-sim-bench-") as tmp:
        result = as_dict(asyncio.run(run_bench(symbols, speed, seconds, Path(tmp))))
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for name, value in result.items():
            typer.echo(f"{name:>16}: {value}")


def _register() -> None:
    from tickguard.cli import app

    app.add_typer(sim_app, name="sim")


_register()

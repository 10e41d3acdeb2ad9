"""``tickguard collect BROKER --symbols …``: run a collector into Redis until Ctrl-C.

The same :func:`tickguard.collector.run_collector` the Prefect deployment calls, with the
Redis stream sink (disk spool while Redis is away) and the Redis app-key lock. Ctrl-C or
SIGTERM stops it cleanly: readers stop, queued events are flushed, the report is printed.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated, Any

import typer

from tickguard.cli import app
from tickguard.models import KST, Broker

_SYMBOL = re.compile(r"^[A-Za-z0-9_]{1,16}$")


def parse_broker(value: str) -> Broker:
    try:
        return Broker(value.lower())
    except ValueError:
        names = ", ".join(b.value for b in Broker)
        raise typer.BadParameter(f"unknown broker {value!r}; one of: {names}") from None


def parse_symbols(value: str) -> list[str]:
    """``005930,000660`` → codes; anything that is not a code is a usage error."""
    codes = [c.strip() for c in value.split(",") if c.strip()]
    bad = [c for c in codes if not _SYMBOL.match(c)]
    if not codes or bad:
        raise typer.BadParameter(f"expected comma-separated symbol codes, got {bad or value!r}")
    return codes


def parse_channels(value: str) -> list[Any]:
    from tickguard.brokers.base import Channel

    try:
        return [Channel(c.strip()) for c in value.split(",") if c.strip()]
    except ValueError:
        names = ",".join(c.value for c in Channel)
        raise typer.BadParameter(f"channels are {names}, got {value!r}") from None


def _until(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = time.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected HH:MM (KST), got {value!r}") from None
    return datetime.combine(datetime.now(KST).date(), at, tzinfo=KST).astimezone(UTC)


@app.command("collect")
def collect(
    broker: Annotated[str, typer.Argument(help="Broker to collect from (kis, kiwoom).")],
    symbols: Annotated[str, typer.Option("--symbols", help="Comma-separated codes.")],
    channels: Annotated[str, typer.Option(help="Comma-separated: trades,book.")] = "trades,book",
    until: Annotated[str | None, typer.Option(help="Stop at HH:MM KST (default: Ctrl-C).")] = None,
    record: Annotated[bool, typer.Option(help="Keep raw frames under data_dir/raw.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Collect real-time trades and order books into the Redis stream until stopped."""
    chosen = parse_broker(broker)
    codes = parse_symbols(symbols)
    chans = parse_channels(channels)
    stop_at = _until(until)
    from tickguard.collector import make_plan
    from tickguard.errors import PlanError, TickguardError
    from tickguard.settings import get_settings

    try:
        settings = get_settings()
        make_plan(settings, chosen, codes, chans)  # refuse before anything starts
        report = asyncio.run(_collect(settings, chosen, codes, chans, stop_at, record))
    except PlanError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report, default=str))
    else:
        t = report["totals"]
        typer.echo(
            f"{t.get('trades', 0)} trades, {t.get('books', 0)} books, {t.get('drops', 0)} drops, "
            f"{t.get('gaps_opened', 0)} gaps, {t.get('quarantined', 0)} quarantined"
        )
    gave_up = [f"{s['key']}: {s['gave_up']}" for s in report["sessions"] if s["gave_up"]]
    if gave_up:
        typer.echo("error: sessions gave up: " + "; ".join(gave_up), err=True)
        raise typer.Exit(1)


async def _collect(
    settings: Any, broker: Broker, codes: list[str], chans: list[Any], stop_at: Any, record: bool
) -> dict[str, Any]:
    from tickguard.collector import run_collector
    from tickguard.sinks.redis_stream import RedisStreamSink, redis_client
    from tickguard.stack import resolve_redis_url

    url = resolve_redis_url(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lock = redis_client(url, 2.0)
    record_dir: Path | None = settings.data_dir / "raw" if record else None
    try:
        async with RedisStreamSink.from_settings(
            settings, url, name=f"collect-{broker.value}"
        ) as sink:
            report = await run_collector(
                settings, broker, codes, sink=sink, stop_event=stop, channels=chans,
                lock_redis=lock, record_dir=record_dir, stop_at=stop_at,
            )  # fmt: skip
            await sink.drain(5.0)
    finally:
        await lock.aclose()
    return report.as_dict()

"""``tickguard replay FILE… [--broker kis] [--to-stream]``: a raw recording through the codec.

Prints what the recording decodes to (frames, trades, books, quarantined). With
``--to-stream`` the events also go into the Redis stream, where persist stores them by
natural key — replaying what was already stored changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from tickguard.cli import app
from tickguard.cli.collect import parse_broker


def _files(paths: list[Path]) -> list[Path]:
    from tickguard.stream.recorder import recordings

    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(recordings(path))
        elif path.is_file():
            out.append(path)
        else:
            raise typer.BadParameter(f"no such file or directory: {path}")
    if not out:
        raise typer.BadParameter("no recordings found")
    return out


@app.command("replay")
def replay(
    paths: Annotated[list[Path], typer.Argument(help="Recording files or directories.")],
    broker: Annotated[str, typer.Option(help="Broker whose codec decodes the frames.")] = "kis",
    day: Annotated[str | None, typer.Option(help="Trading day YYYY-MM-DD.")] = None,
    to_stream: Annotated[bool, typer.Option("--to-stream", help="Also XADD the events.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print counts as JSON.")] = False,
) -> None:
    """Feed a raw recording back through the broker's codec; print the counts."""
    chosen = parse_broker(broker)
    files = _files(paths)
    try:
        trading_day = date.fromisoformat(day) if day else None
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {day!r}") from None
    counts = asyncio.run(_replay(chosen, files, trading_day, to_stream))
    if as_json:
        typer.echo(json.dumps(counts))
    else:
        for name, value in counts.items():
            typer.echo(f"{name:16} {value}")


async def _replay(
    broker: Any, files: list[Path], day: date | None, to_stream: bool
) -> dict[str, Any]:
    from tickguard.brokers.registry import REGISTRY
    from tickguard.settings import get_settings
    from tickguard.stream.replay import replay as run_replay

    settings = get_settings()
    traits = REGISTRY[broker]
    if not to_stream:
        return (await run_replay(files, traits, settings, trading_day=day)).as_dict()
    from tickguard.sinks.redis_stream import RedisStreamSink
    from tickguard.stack import resolve_redis_url

    url = resolve_redis_url(settings)
    async with RedisStreamSink.from_settings(settings, url, name="replay") as sink:
        report = await run_replay(files, traits, settings, trading_day=day, sink=sink)
        await sink.drain(10.0)
    return report.as_dict()

"""``tickguard decode``: raw broker frames (one per line) → one JSON object per event.

The command runs a recorded or captured feed through exactly the codec the collector uses,
looked up in ``tickguard.brokers.registry`` (no broker is named here). stdout carries only
events, so it pipes into ``jq``; every line that could not be decoded goes to stderr with its
line number and reason, followed by a summary. The exit code is 0 whenever the input could
be read — undecodable lines are data, not a failure of the command.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from tickguard.brokers.base import BrokerSession
from tickguard.cli import app
from tickguard.cli.params import trading_day
from tickguard.models import BookSnapshot, Broker, Trade


def event_json(event: Trade | BookSnapshot) -> dict[str, Any]:
    """The stable JSON shape of one event (the command's stdout contract)."""
    if isinstance(event, Trade):
        return {
            "kind": "trade",
            "broker": event.broker.value,
            "symbol": event.symbol,
            "ts": event.ts.isoformat(),
            "price": event.price,
            "qty": event.qty,
            "side": event.side.value if event.side is not None else None,
            "cum_volume": event.cum_volume,
        }
    return {
        "kind": "book",
        "broker": event.broker.value,
        "symbol": event.symbol,
        "ts": event.ts.isoformat(),
        "asks": [list(level) for level in event.asks],
        "bids": [list(level) for level in event.bids],
        "total_ask_qty": event.total_ask_qty,
        "total_bid_qty": event.total_bid_qty,
    }


@dataclass
class DecodeSummary:
    lines: int = 0
    trades: int = 0
    books: int = 0
    controls: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    def __str__(self) -> str:
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(self.quarantined.items()))
        total = sum(self.quarantined.values())
        return (
            f"decoded {self.lines} lines: {self.trades} trades, {self.books} books, "
            f"{self.controls} control, {total} quarantined" + (f" ({reasons})" if reasons else "")
        )


def decode_lines(
    session: BrokerSession, lines: Iterable[bytes], out: IO[str], err: IO[str]
) -> DecodeSummary:
    """Feed each non-empty line through ``session``; events to ``out``, failures to ``err``."""
    summary = DecodeSummary()
    for number, line in enumerate(lines, start=1):
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        summary.lines += 1
        decoded = session.receive(raw, datetime.now(UTC))
        for event in decoded.events:
            out.write(json.dumps(event_json(event), ensure_ascii=False) + "\n")
            if isinstance(event, Trade):
                summary.trades += 1
            else:
                summary.books += 1
        summary.controls += len(decoded.acks) + len(decoded.controls)
        for q in decoded.quarantined:
            summary.quarantined[q.reason] += 1
            err.write(f"line {number}: {q.reason}" + (f": {q.detail}" if q.detail else "") + "\n")
    return summary


@app.command("decode")
def decode(
    broker: Annotated[Broker, typer.Option("--broker", help="Whose frames these are.")],
    day: Annotated[
        str | None,
        typer.Option("--day", help="Trading day (YYYY-MM-DD) for frames that carry only a time."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Argument(help="Frames, one per line (default: stdin; '-' also means stdin)."),
    ] = None,
) -> None:
    """Decode raw frames into one JSON object per trade or book on stdout."""
    from tickguard.brokers.registry import REGISTRY
    from tickguard.errors import SettingsError
    from tickguard.settings import load_settings

    traits = REGISTRY.get(broker)
    if traits is None:
        raise typer.BadParameter(
            f"no codec registered for {broker.value} yet", param_hint="--broker"
        )
    the_day = trading_day(day)
    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    session = traits.new_session("", the_day, settings)
    source = _open(file)
    try:
        summary = decode_lines(session, source, sys.stdout, sys.stderr)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, like any filter
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    except OSError as exc:
        typer.echo(f"error: reading {file or 'stdin'} failed: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    typer.echo(str(summary), err=True)


def _open(file: Path | None) -> IO[bytes]:
    if file is None or str(file) == "-":
        return sys.stdin.buffer
    try:
        return file.open("rb")
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {file}: {exc.strerror or exc}", param_hint="FILE"
        ) from None

"""Replay a raw recording through a broker's codec, and optionally into a sink.

The codec is sans-I/O, so a recording replays through exactly the code that ran live: the
same acks set the same decryption keys, the same malformed frames land in quarantine. A
replay into the sink uses the same batches and natural keys as the live path, so replaying
what was already stored changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from tickguard.brokers.base import BrokerTraits
from tickguard.models import KST, Batch, QuarantineRecord, Trade
from tickguard.settings import Settings
from tickguard.stream.batcher import Sink
from tickguard.stream.recorder import read_recording


@dataclass(slots=True)
class ReplayReport:
    files: int = 0
    frames_received: int = 0
    frames_sent: int = 0
    trades: int = 0
    books: int = 0
    quarantined: int = 0
    acks: int = 0
    controls: int = 0
    replies: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def replay(
    paths: Iterable[Path],
    traits: BrokerTraits,
    settings: Settings,
    *,
    trading_day: date | None = None,
    sink: Sink | None = None,
) -> ReplayReport:
    """Decode every received frame of ``paths`` (in order) with one fresh broker session.

    ``trading_day`` defaults to the KST date of the first frame's receive time (KIS book
    frames carry only a time of day).
    """
    report = ReplayReport()
    session = None
    batch = Batch()
    for path in paths:
        report.files += 1
        for frame in read_recording(path):
            if frame.sent:
                report.frames_sent += 1
                continue
            if session is None:
                day = trading_day or frame.at.astimezone(KST).date()
                session = traits.new_session("replay", day, settings)
            report.frames_received += 1
            decoded = session.receive(frame.raw, frame.at)
            report.acks += len(decoded.acks)
            report.controls += len(decoded.controls)
            report.replies += len(decoded.replies)
            for event in decoded.events:
                if isinstance(event, Trade):
                    report.trades += 1
                    batch.trades.append(event)
                else:
                    report.books += 1
                    batch.books.append(event)
            for q in decoded.quarantined:
                report.quarantined += 1
                batch.quarantined.append(
                    QuarantineRecord(traits.broker, frame.at, q.reason, q.raw, q.detail)
                )
            if sink is not None and len(batch) >= settings.stream.batch_max_events:
                await sink.put(batch)
                report.batches += 1
                batch = Batch()
            elif sink is None:
                batch = Batch()
    if sink is not None and len(batch):
        await sink.put(batch)
        report.batches += 1
    return report

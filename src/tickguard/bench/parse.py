"""Parse throughput of a broker codec, and of the library users would pick instead.

``tickguard bench parse --broker kis`` builds a seeded, realistic H0STCNT0 feed (most frames
carry one record, bursts carry 2–20, as KIS batches at the open and close), then times the
codec's ``receive`` over it in CPU seconds of this one process — "records per second on one
core". In the same run it times python-kis's parser (``KisWebsocketResponse.parse`` into
``KisDomesticRealtimePrice``, what ``KisWebsocketClient._handle_event`` calls for every
frame) on the very same frames, when python-kis is installed; otherwise it says why not.
Both sides must parse the same number of records, or the bench refuses to report.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from tickguard.brokers.kis.wire import H0STCNT0_COLUMNS, TR_TRADES
from tickguard.brokers.registry import REGISTRY
from tickguard.models import Broker
from tickguard.settings import Settings
from tickguard.sim.kiwoom_frames import realistic_trade_messages

FrameParser = Callable[[list[str]], int]
"""Parses every frame of a list; returns the number of records it produced."""

BENCH_DAY = date(2026, 6, 12)
_COL = {name: i for i, name in enumerate(H0STCNT0_COLUMNS)}
_TEMPLATE_RECORD = (
    "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^"
    "219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^"
    "-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"
)
"""KIS's own example record (reference §1.7.1): the untouched columns of every bench record."""
_TEMPLATE = _TEMPLATE_RECORD.split("^")


@dataclass(frozen=True, slots=True)
class ParseBenchResult:
    broker: str
    frames: int
    records: int
    repeat: int
    records_per_s: float
    python_kis_records_per_s: float | None
    python_kis_unavailable: str | None

    @property
    def ratio(self) -> float | None:
        """Codec ÷ python-kis throughput (> 1: the codec is faster)."""
        if not self.python_kis_records_per_s:
            return None
        return self.records_per_s / self.python_kis_records_per_s

    def as_json(self) -> dict[str, object]:
        return {
            "broker": self.broker,
            "records_per_s": round(self.records_per_s),
            "python_kis_records_per_s": (
                round(self.python_kis_records_per_s) if self.python_kis_records_per_s else None
            ),
            "python_kis_unavailable": self.python_kis_unavailable,
            "ratio": round(self.ratio, 2) if self.ratio is not None else None,
            "frames": self.frames,
            "records": self.records,
            "repeat": self.repeat,
            "clock": "process CPU time",
        }


def _tick(price: int) -> int:
    """KRX tick size (KIS backtester table, reference §3.6)."""
    for limit, tick in ((2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100)):
        if price < limit:
            return tick
    return 500 if price < 500_000 else 1_000


def realistic_h0stcnt0_frames(records: int, seed: int = 7, symbols: int = 20) -> list[str]:
    """A seeded H0STCNT0 feed of ``records`` records over ``symbols`` symbols."""
    rng = random.Random(seed)
    book = {
        f"{rng.randrange(1, 999_999):06d}": rng.choice([1_500, 9_870, 71_900, 350_000])
        for _ in range(symbols)
    }
    cum = dict.fromkeys(book, 0)
    second, frames, made = 9 * 3600, [], 0
    while made < records:
        count = 1 if rng.random() < 0.65 else rng.randint(2, 20)
        count = min(count, records - made)
        second += rng.randint(0, 1)
        hhmmss = f"{second // 3600:02d}{second // 60 % 60:02d}{second % 60:02d}"
        fields: list[str] = []
        for _ in range(count):
            symbol = rng.choice(list(book))
            book[symbol] = max(
                _tick(book[symbol]), book[symbol] + rng.choice((-1, 0, 0, 1)) * _tick(book[symbol])
            )
            qty = rng.choice((1, 1, 3, 10, 25, 120, 1_000))
            cum[symbol] += qty
            fields += _record(symbol, hhmmss, book[symbol], qty, cum[symbol], rng.choice("115"))
        frames.append(f"0|{TR_TRADES}|{count:03d}|" + "^".join(fields))
        made += count
    return frames


def _record(symbol: str, hhmmss: str, price: int, qty: int, cum: int, side: str) -> list[str]:
    record = list(_TEMPLATE)
    values = {
        "MKSC_SHRN_ISCD": symbol, "STCK_CNTG_HOUR": hhmmss, "STCK_PRPR": str(price),
        "ASKP1": str(price + _tick(price)), "BIDP1": str(price), "CNTG_VOL": str(qty),
        "ACML_VOL": str(cum), "ACML_TR_PBMN": str(cum * price), "CCLD_DVSN": side,
        "BSOP_DATE": BENCH_DAY.strftime("%Y%m%d"),
    }  # fmt: skip
    for name, value in values.items():
        record[_COL[name]] = value
    return record


def codec_parser(broker: Broker) -> FrameParser:
    """The registry's codec for ``broker``, wrapped to count the events it returns."""
    session = REGISTRY[broker].new_session("", BENCH_DAY, Settings())
    received_at = datetime.now(UTC)

    def parse(frames: list[str]) -> int:
        receive, n = session.receive, 0
        for frame in frames:
            n += len(receive(frame, received_at).events)
        return n

    return parse


def python_kis_parser() -> FrameParser:
    """python-kis's own path for one H0STCNT0 frame; ImportError when it is not installed."""
    # python-kis ships no type information; it is a dev-only baseline.
    from pykis.api.websocket.price import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
        KisDomesticRealtimePrice,
    )
    from pykis.responses.websocket import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
        KisWebsocketResponse,
    )

    def parse(frames: list[str]) -> int:
        n = 0
        for frame in frames:
            _flag, _tr_id, count, body = frame.split("|", 3)
            for _ in KisWebsocketResponse.parse(
                body, count=int(count), response_type=KisDomesticRealtimePrice
            ):
                n += 1
        return n

    return parse


def best_rate(parse: FrameParser, frames: list[str], records: int, repeat: int) -> float:
    """Best of ``repeat`` runs, records per CPU second; checks every record was parsed."""
    best = 0.0
    for _ in range(repeat):
        started = time.process_time()
        parsed = parse(frames)
        elapsed = max(time.process_time() - started, 1e-9)
        if parsed != records:
            raise RuntimeError(f"parsed {parsed} records, expected {records}")
        best = max(best, records / elapsed)
    return best


FEEDS: dict[Broker, Callable[[int, int], list[str]]] = {
    Broker.KIS: realistic_h0stcnt0_frames,
    Broker.KIWOOM: realistic_trade_messages,
}
"""Realistic trade feeds per broker (records, seed) → frames."""
BASELINES: dict[Broker, Callable[[], FrameParser]] = {Broker.KIS: python_kis_parser}
"""The parser users pick instead of tickguard, per broker."""


def run_parse_bench(
    broker: Broker, records: int = 100_000, repeat: int = 3, seed: int = 7
) -> ParseBenchResult:
    """Time the codec and the baseline on the same frames (no baseline: reported as such)."""
    frames = FEEDS[broker](records, seed)
    rate = best_rate(codec_parser(broker), frames, records, repeat)
    baseline_rate: float | None = None
    unavailable: str | None = None
    make_baseline = BASELINES.get(broker)
    if make_baseline is None:
        unavailable = f"no baseline parser known for {broker.value}"
    else:
        try:
            baseline = make_baseline()
        except ImportError as exc:
            unavailable = f"{type(exc).__name__}: {exc}"
        else:
            baseline_rate = best_rate(baseline, frames, records, repeat)
    return ParseBenchResult(
        broker.value, len(frames), records, repeat, rate, baseline_rate, unavailable
    )

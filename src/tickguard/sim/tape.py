"""A tape generated and encoded before the sim clock starts (throughput benches).

Generating a market event and encoding its record cost the simulator about as much as
everything else it does per record together (measured: ~30 µs and ~25 µs per event on
this project's 2-core box, next to dispatch, framing and the websocket send). A bench that
wants the simulator to offer 30k+ records/s from one process prepares the first
``pregenerate_s`` session seconds ahead — events and their encoded records in memory — so
the clock then only drives dispatch and sending. Events after the horizon are generated and
encoded live as usual. The tape is the same: same events, same records, same truth.

Memory is the price: roughly 1 KB per prepared event (event object + record text).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Hashable, Iterator

from tickguard.sim.feed import Wire
from tickguard.sim.market import GenEvent


class PreEncodedWire:
    """A :class:`~tickguard.sim.feed.Wire` that serves records encoded ahead of time.

    ``encode`` of a prepared event returns its stored record once (and forgets it); any
    other event is encoded by the wrapped wire.
    """

    def __init__(self, wire: Wire) -> None:
        self._wire = wire
        self.trade_channel = wire.trade_channel
        self.book_channel = wire.book_channel
        self.rng_salt = wire.rng_salt
        # The rest is the wrapped wire's own, bound once: the feed calls group/frame/label
        # per record or frame, and a forwarding method would add a call to each.
        self.group: Callable[[str, str], Hashable] = wire.group
        self.frame: Callable[[Hashable, list[str]], str] = wire.frame
        self.label: Callable[[Hashable], str] = wire.label
        self.grow: Callable[[str], str] = wire.grow
        self.corrupt: Callable[[random.Random, str], str] = wire.corrupt
        self.malformed: Callable[[random.Random, str, str], tuple[str, str]] = wire.malformed
        self._records: dict[int, str] = {}

    def prepare(self, events: Iterator[GenEvent], until_t: float) -> Iterator[GenEvent]:
        """Generate and encode every event before ``until_t`` now; the same tape back."""
        ready: list[GenEvent] = []
        encode, records = self._wire.encode, self._records
        nxt = next(events, None)
        while nxt is not None and nxt.t < until_t:
            ready.append(nxt)
            records[id(nxt)] = encode(nxt)
            nxt = next(events, None)
        rest: Iterator[GenEvent] = events if nxt is None else itertools.chain([nxt], events)
        return itertools.chain(_consume(ready, records), rest)

    @property
    def prepared(self) -> int:
        """Records prepared and not yet sent."""
        return len(self._records)

    def encode(self, ev: GenEvent) -> str:
        record = self._records.pop(id(ev), None)
        return self._wire.encode(ev) if record is None else record


def _consume(ready: list[GenEvent], records: dict[int, str]) -> Iterator[GenEvent]:
    """Yield prepared events, releasing each as it goes. A record its event did not take
    (nobody was subscribed) is dropped once the next event is asked for: the event may be
    freed then, and its id reused by a live event."""
    ready.reverse()
    while ready:
        ev = ready.pop()
        yield ev
        records.pop(id(ev), None)

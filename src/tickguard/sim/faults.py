"""The fault menu of the simulators, as data (broker-neutral).

A :class:`FaultSchedule` is a list of fault specs; the simulator reads it in one place and
records every injection in its ground truth. Connection faults run on wall time (they model
the network and the broker's servers); halts run on session time (they are market events).

CLI grammar (``--fault`` may be repeated)::

    flap:3-5                  drop every live connection without a close frame every 3–5 s
    flap:4                    ... every 4 s
    flap:30x1                 ... once: the first connection is dropped 30 s after it opened
    silent:8                  all sessions silent (socket open, PINGPONG on) for 8 s, 5 s in
    silent:8@20/60            ... first after 20 s, then every 60 s
    malformed:0.01            1 % of data frames preceded by a malformed frame (nothing lost)
    malformed:0.01,corrupt    1 % of data frames mangled in place (their records are lost)
    grow:H0STASP0             every H0STASP0 record carries one extra trailing field
    grow:H0STCNT0@10x5        ... 10 s in, for 5 frames
    halt:005930@10:00-10:30   symbol stops trading 10:00–10:30 session time (its books go
                              on, flagged as the broker flags a halt / VI)
    withhold:005930@09:05-09:08        the symbol's trades 09:05–09:08 session time are
                                       generated but never sent; the connection and every
                                       other symbol (and its books) keep flowing
    withhold:005930+000660@09:05:00-09:05:40   several symbols, times to the second
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import time
from typing import Literal

from tickguard.errors import TickguardError
from tickguard.sim.market import HaltWindow


class FaultSpecError(TickguardError, ValueError):
    """A fault spec that cannot be parsed; the message shows the accepted grammar."""


@dataclass(frozen=True, slots=True)
class Flap:
    """Abort the TCP transport (no close frame) every ``min_s``–``max_s`` wall seconds."""

    min_s: float
    max_s: float
    times: int | None = None
    """How many connections are dropped in all; None = every connection, forever."""


@dataclass(frozen=True, slots=True)
class Silence:
    """No data frames for ``duration_s`` while the socket stays open."""

    duration_s: float
    after_s: float = 5.0
    every_s: float | None = None


@dataclass(frozen=True, slots=True)
class Malformed:
    """Malformed frames at ``rate`` (a fraction of data frames)."""

    rate: float
    mode: Literal["inject", "corrupt"] = "inject"


@dataclass(frozen=True, slots=True)
class Grow:
    """Records of ``tr_id`` grow by one trailing field (a broker adding a column)."""

    tr_id: str
    after_s: float = 0.0
    frames: int | None = None
    """How many frames grow; None = every frame from ``after_s`` on."""


@dataclass(frozen=True, slots=True)
class Halt:
    """A symbol halted for a window of session time."""

    symbol: str
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Withhold:
    """Trades of ``symbols`` in [start, end) session time are generated, never sent.

    Ticks lost inside a live connection: the ground truth records them as generated and
    the fault with its symbols and span, so a judge knows they were never received."""

    symbols: tuple[str, ...]
    start: time
    end: time


FaultSpec = Flap | Silence | Malformed | Grow | Halt | Withhold


@dataclass(frozen=True, slots=True)
class FaultSchedule:
    faults: tuple[FaultSpec, ...] = ()
    seed: int = 0
    """Seed of the fault RNG (flap intervals, malformed frame choice)."""

    @classmethod
    def parse(cls, specs: Iterable[str], seed: int = 0) -> FaultSchedule:
        return cls(tuple(parse_fault(s) for s in specs), seed)

    def flap(self) -> Flap | None:
        return next((f for f in self.faults if isinstance(f, Flap)), None)

    def silences(self) -> list[Silence]:
        return [f for f in self.faults if isinstance(f, Silence)]

    def malformed(self) -> Malformed | None:
        return next((f for f in self.faults if isinstance(f, Malformed)), None)

    def grows(self) -> list[Grow]:
        return [f for f in self.faults if isinstance(f, Grow)]

    def withholds(self) -> list[Withhold]:
        return [f for f in self.faults if isinstance(f, Withhold)]

    def halts(self) -> tuple[HaltWindow, ...]:
        return tuple(
            HaltWindow(f.symbol, f.start, f.end) for f in self.faults if isinstance(f, Halt)
        )


_NUM = r"(\d+(?:\.\d+)?)"
_FLAP = re.compile(rf"^{_NUM}(?:-{_NUM})?(?:x(\d+))?$")
_SILENT = re.compile(rf"^{_NUM}(?:@{_NUM})?(?:/{_NUM})?$")
_MALFORMED = re.compile(rf"^{_NUM}(?:,(inject|corrupt))?$")
_GROW = re.compile(rf"^([A-Z0-9]+)(?:@{_NUM})?(?:x(\d+))?$")
_HALT = re.compile(r"^([A-Z0-9]{6,7})@(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$")
_CLOCK = r"(\d{1,2}:\d{2}(?::\d{2})?)"
_WITHHOLD = re.compile(rf"^([A-Z0-9]{{6,7}}(?:\+[A-Z0-9]{{6,7}})*)@{_CLOCK}-{_CLOCK}$")


def _hm(text: str) -> time:
    hour, minute, *rest = (int(x) for x in text.split(":"))
    second = rest[0] if rest else 0
    if hour > 23 or minute > 59 or second > 59:
        raise FaultSpecError(f"not a time of day: {text!r}")
    return time(hour, minute, second)


def _match(pattern: re.Pattern[str], args: str, spec: str) -> Sequence[str | None]:
    m = pattern.match(args)
    if m is None:
        raise FaultSpecError(f"cannot parse fault {spec!r}; {USAGE}")
    return m.groups()


def parse_fault(spec: str) -> FaultSpec:
    """One ``kind:args`` spec → a fault; :class:`FaultSpecError` with the grammar otherwise."""
    kind, sep, args = spec.strip().partition(":")
    if not sep or kind not in _PARSERS:
        raise FaultSpecError(f"unknown fault {spec!r}; {USAGE}")
    return _PARSERS[kind](args, spec)


def _flap(args: str, spec: str) -> Flap:
    lo, hi, times = _match(_FLAP, args, spec)
    low = float(lo or 0)
    high = float(hi) if hi else low
    if low <= 0 or high < low or times == "0":
        raise FaultSpecError(f"flap interval must be positive and ordered: {spec!r}")
    return Flap(low, high, int(times) if times else None)


def _silent(args: str, spec: str) -> Silence:
    dur, after, every = _match(_SILENT, args, spec)
    silence = Silence(
        float(dur or 0), float(after) if after else 5.0, float(every) if every else None
    )
    if silence.duration_s <= 0 or (
        silence.every_s is not None and silence.every_s <= silence.duration_s
    ):
        raise FaultSpecError(f"silence needs a positive duration shorter than its period: {spec!r}")
    return silence


def _malformed(args: str, spec: str) -> Malformed:
    rate, mode = _match(_MALFORMED, args, spec)
    value = float(rate or 0)
    if not 0 < value <= 1:
        raise FaultSpecError(f"malformed rate must be in (0, 1]: {spec!r}")
    return Malformed(value, "corrupt" if mode == "corrupt" else "inject")


def _grow(args: str, spec: str) -> Grow:
    tr_id, after, frames = _match(_GROW, args, spec)
    return Grow(str(tr_id), float(after) if after else 0.0, int(frames) if frames else None)


def _halt(args: str, spec: str) -> Halt:
    symbol, start, end = _match(_HALT, args, spec)
    halt = Halt(str(symbol), _hm(str(start)), _hm(str(end)))
    if halt.end <= halt.start:
        raise FaultSpecError(f"halt must end after it starts: {spec!r}")
    return halt


def _withhold(args: str, spec: str) -> Withhold:
    symbols, start, end = _match(_WITHHOLD, args, spec)
    held = Withhold(tuple(str(symbols).split("+")), _hm(str(start)), _hm(str(end)))
    if held.end <= held.start:
        raise FaultSpecError(f"withhold must end after it starts: {spec!r}")
    return held


_PARSERS: dict[str, Callable[[str, str], FaultSpec]] = {
    "flap": _flap,
    "silent": _silent,
    "malformed": _malformed,
    "grow": _grow,
    "halt": _halt,
    "withhold": _withhold,
}
USAGE = (
    "expected one of flap:MIN[-MAX][xTIMES], silent:SECONDS[@AFTER][/EVERY], "
    "malformed:RATE[,corrupt], grow:TR_ID[@AFTER][xFRAMES], halt:SYMBOL@HH:MM-HH:MM, "
    "withhold:SYMBOL[+SYMBOL…]@HH:MM[:SS]-HH:MM[:SS]"
)

"""The simulator's KIS intraday quotation endpoints, served from the market's own tape (§1.10).

* FHPST01060000 ``inquire-time-itemconclusion``: per-trade rows at or before
  ``FID_INPUT_HOUR_1``, newest first, with ``acml_vol`` (cumulative volume) and ``cnqn``.
* FHKST03010200 ``inquire-time-itemchartprice``: minute bars at or before the hour, 30 rows.
* FHKST03010230 ``inquire-time-dailychartprice``: the same bars, 120 rows per call.

A symbol's history is regenerated from its own seed (``Market.symbol_tape``) up to the
simulator's clock, so REST and websocket tell the same ground truth. Every call checks the
bearer token against :class:`~tickguard.sim.kis_rest.KisAuthority` and counts against the app
key's budget: past ``rate_per_s`` calls in any second the answer is HTTP 500 with
``EGW00201`` (the shape KIS is reported to use, reference §1.9).

Simulator choices where KIS's behaviour is UNCONFIRMED (reference §4.5): FHPST01060000
returns about ``tick_rows`` rows but never splits one exchange second across two pages (so
a time cursor of "earliest second − 1" pages without loss), it sends the price as both
``stck_prpr`` and ``stck_pbpr``, and a minute bar is stamped with its minute's start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tickguard.sim.kiwoom_frames import Bar, minute_bars
from tickguard.sim.kiwoom_rest import RateLimiter
from tickguard.sim.market import GenEvent, GenTrade, Market, hhmmss

History = Callable[[str], Sequence[GenTrade] | None]
"""A symbol's trades so far today, oldest first; None for a code the market does not know."""
QUOTATIONS = "/uapi/domestic-stock/v1/quotations"


@dataclass(frozen=True, slots=True)
class KisRestRules:
    rate_per_s: int = 20
    """EGW00201 past this many quotation calls per app key in any second (KIS real: 20)."""
    tick_rows: int = 30
    """FHPST01060000 rows per call (UNCONFIRMED); whole seconds are never split."""


def market_history(market: Market, now_t: Callable[[], float]) -> History:
    """History of ``market`` up to session time ``now_t()``.

    Each symbol's tape is generated once and advanced as the clock moves (regenerating a
    day per request made every quotation call cost a whole tape: ~4 calls/s at 10:30).
    """
    tapes: dict[str, tuple[Iterator[GenEvent], list[GenTrade], list[GenEvent]]] = {}

    def history(symbol: str) -> list[GenTrade] | None:
        if symbol not in market.symbols:
            return None
        tape, trades, ahead = tapes.setdefault(symbol, (market.symbol_tape(symbol), [], []))
        limit = now_t()
        while True:
            event = ahead.pop() if ahead else next(tape, None)
            if event is None:
                break
            if event.t > limit:
                ahead.append(event)
                break
            if isinstance(event, GenTrade):
                trades.append(event)
        return trades

    return history


def _seconds(hour: str) -> int | None:
    if len(hour) != 6 or not hour.isdigit():
        return None
    return int(hour[:2]) * 3600 + int(hour[2:4]) * 60 + int(hour[4:])


def _envelope(output2: list[dict[str, str]], output1: dict[str, str]) -> JSONResponse:
    body = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.", "output1": output1}
    response = JSONResponse({**body, "output2": output2})
    response.headers["tr_cont"] = "D"
    return response


def _error(status: int, code: str, text: str) -> JSONResponse:
    return JSONResponse({"rt_cd": "1", "msg_cd": code, "msg1": text}, status_code=status)


def tick_page(trades: Sequence[GenTrade], until_s: int, rows: int) -> list[GenTrade]:
    """Trades at or before ``until_s`` (whole seconds), newest first: at least ``rows`` of
    them when there are, completed to the end of the oldest second taken."""
    older = [t for t in trades if int(t.t) <= until_s]
    page: list[GenTrade] = []
    for trade in reversed(older):
        if len(page) >= rows and int(trade.t) != int(page[-1].t):
            break
        page.append(trade)
    return page


def tick_row(trade: GenTrade) -> dict[str, str]:
    diff = trade.price - trade.prev_close
    sign = "2" if diff > 0 else "5" if diff < 0 else "3"
    pct = diff * 100 / trade.prev_close if trade.prev_close else 0.0
    strength = trade.buy_volume * 100 / trade.sell_volume if trade.sell_volume else 0.0
    price = str(trade.price)
    return {
        "stck_cntg_hour": hhmmss(trade.t),
        "stck_prpr": price,
        "stck_pbpr": price,
        "prdy_vrss": str(diff),
        "prdy_vrss_sign": sign,
        "prdy_ctrt": f"{pct:.2f}",
        "askp": str(trade.ask1),
        "bidp": str(trade.bid1),
        "tday_rltv": f"{strength:.2f}",
        "acml_vol": str(trade.cum_volume),
        "cnqn": str(trade.qty),
    }


def bar_row(bar: Bar) -> dict[str, str]:
    return {
        "stck_bsop_date": bar.stamp[:8],
        "stck_cntg_hour": bar.stamp[8:],
        "stck_prpr": str(bar.close),
        "stck_oprc": str(bar.open),
        "stck_hgpr": str(bar.high),
        "stck_lwpr": str(bar.low),
        "cntg_vol": str(bar.volume),
        "acml_tr_pbmn": "0",
    }


class KisHistoryService:
    """Answers the three quotation TRs; counts calls and refusals."""

    def __init__(
        self, history: History, token_app: Callable[[str], str | None], rules: KisRestRules
    ) -> None:
        self._history = history
        self._token_app = token_app
        self._rules = rules
        self.limiter = RateLimiter(rules.rate_per_s, 1.0)
        self.requests = 0

    @property
    def rate_limited(self) -> int:
        return self.limiter.refused

    def _gate(self, request: Request) -> JSONResponse | None:
        """Token and budget checks shared by every quotation call (None = go ahead)."""
        self.requests += 1
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        app_key = self._token_app(token) if scheme.lower() == "bearer" else None
        if app_key is None or request.headers.get("appkey") != app_key:
            return _error(500, "EGW00121", "유효하지 않은 token 입니다.")
        if not self.limiter.allow(app_key):
            return _error(500, "EGW00201", "초당 거래건수를 초과하였습니다.")
        return None

    def _inputs(self, request: Request) -> tuple[Sequence[GenTrade], int] | JSONResponse:
        q = {k.upper(): v for k, v in request.query_params.items()}
        until = _seconds(q.get("FID_INPUT_HOUR_1", ""))
        if until is None:
            return _error(500, "OPCODE-1", "FID_INPUT_HOUR_1 must be HHMMSS")
        trades = self._history(q.get("FID_INPUT_ISCD", ""))
        if trades is None:
            return _error(500, "OPCODE-2", "종목코드 오류입니다.")
        return trades, until

    async def ticks(self, request: Request) -> JSONResponse:
        refused = self._gate(request)
        if refused is not None:
            return refused
        inputs = self._inputs(request)
        if isinstance(inputs, JSONResponse):
            return inputs
        trades, until = inputs
        page = tick_page(trades, until, self._rules.tick_rows)
        last = trades[-1].cum_volume if trades else 0
        return _envelope([tick_row(t) for t in page], {"acml_vol": str(last)})

    def _bars(self, request: Request, rows: int) -> JSONResponse:
        refused = self._gate(request)
        if refused is not None:
            return refused
        inputs = self._inputs(request)
        if isinstance(inputs, JSONResponse):
            return inputs
        trades, until = inputs
        bars = [b for b in minute_bars(trades, 1) if (_seconds(b.stamp[8:]) or 0) <= until]
        newest_first = [bar_row(b) for b in reversed(bars[-rows:])] if bars else []
        last = trades[-1].cum_volume if trades else 0
        return _envelope(newest_first, {"acml_vol": str(last)})

    async def today_bars(self, request: Request) -> JSONResponse:
        return self._bars(request, 30)

    async def daily_bars(self, request: Request) -> JSONResponse:
        return self._bars(request, 120)

    def routes(self) -> list[Route]:
        return [
            Route(QUOTATIONS + "/inquire-time-itemconclusion", self.ticks, methods=["GET"]),
            Route(QUOTATIONS + "/inquire-time-itemchartprice", self.today_bars, methods=["GET"]),
            Route(QUOTATIONS + "/inquire-time-dailychartprice", self.daily_bars, methods=["GET"]),
        ]

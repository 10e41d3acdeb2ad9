"""The simulator's Kiwoom REST side: au10001 token and the ka10079/ka10080 charts (§2.2–2.7).

* ``POST /oauth2/token`` → ``{expires_dt (KST), token_type, token, return_code, return_msg}``;
  8001 for an unknown app key or wrong secret.
* ``POST /api/dostk/chart`` with header ``api-id`` ka10079 (ticks, newest first, no cumulative
  volume) or ka10080 (minute bars, sign-prefixed prices). A long answer is cut into pages of
  ``page_size`` rows: the response headers say ``cont-yn: Y`` and give a ``next-key``; the
  client resends the body with those headers. A continuation reads the snapshot the first
  page was cut from, so paging is consistent while the market moves on.
* ``return_code`` 1700 when an app key asks more than ``max_requests`` times in ``window_s``;
  8005 for an unknown or expired token. Kiwoom answers errors in the body; the HTTP status
  chosen here (200, 429 for 1700) is a simulator choice.

Kiwoom's rows per page and its rate limit are UNCONFIRMED (reference §2.3, §2.7), hence rules.
The simulator knows one trading day: ka10080's optional ``base_dt`` is accepted and ignored.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tickguard.models import KST
from tickguard.sim.kiwoom_frames import Bar, minute_bars, minute_row, tick_bars, tick_row
from tickguard.sim.market import GenTrade

TICK_SCOPES = frozenset({1, 3, 5, 10, 30})
MINUTE_SCOPES = frozenset({1, 3, 5, 10, 15, 30, 45, 60})
SNAPSHOTS_KEPT = 64
History = Callable[[str], Sequence[GenTrade] | None]
"""A symbol's trades so far today, oldest first; None for a code the market does not know."""


@dataclass(frozen=True, slots=True)
class KiwoomRestRules:
    page_size: int = 900
    max_requests: int = 5
    window_s: float = 1.0
    """1700 past ``max_requests`` chart requests per app key in any ``window_s`` seconds."""
    token_ttl_s: float = 86_400.0


def _answer(
    code: int, message: str, status: int = 200, extra: Mapping[str, Any] | None = None
) -> JSONResponse:
    body = {**(extra or {}), "return_code": code, "return_msg": message}
    return JSONResponse(body, status_code=status)


class KiwoomAuthority:
    """Issued tokens and their app keys; which app keys and secrets are accepted."""

    def __init__(
        self,
        apps: Mapping[str, SecretStr] | None,
        ttl_s: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._apps = dict(apps) if apps is not None else None
        self._ttl_s = ttl_s
        self._now = now
        self._tokens: dict[str, tuple[str, float]] = {}
        self.tokens_issued = 0

    def accepts(self, app_key: str, secret: str) -> bool:
        if not app_key or not secret:
            return False
        if self._apps is None:
            return True
        known = self._apps.get(app_key)
        return known is not None and secrets.compare_digest(known.get_secret_value(), secret)

    def issue(self, app_key: str) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(64)
        expires = self._now() + self._ttl_s
        self._tokens[token] = (app_key, expires)
        self.tokens_issued += 1
        return token, datetime.fromtimestamp(int(expires), KST)

    def issued_secrets(self) -> list[str]:
        """Every access token handed out: what a secrets audit searches for."""
        return list(self._tokens)

    def app_key_for(self, token: str) -> str | None:
        """The app key behind a live token (the websocket LOGIN checks it too)."""
        found = self._tokens.get(token)
        if found is None or self._now() >= found[1]:
            return None
        return found[0]


class RateLimiter:
    """At most ``limit`` requests per key in any ``window_s`` (bounded deques)."""

    def __init__(
        self, limit: int, window_s: float = 1.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = max(1, limit)
        self._window_s = window_s
        self._now = now
        self._seen: dict[str, deque[float]] = {}
        self.refused = 0

    def allow(self, key: str) -> bool:
        now = self._now()
        window = self._seen.setdefault(key, deque(maxlen=self._limit))
        if len(window) == self._limit and now - window[0] < self._window_s:
            self.refused += 1
            return False
        window.append(now)
        return True


@dataclass(frozen=True, slots=True)
class _Chart:
    list_name: str
    scopes: frozenset[int]
    bars: Callable[[Sequence[GenTrade], int], list[Bar]]
    row: Callable[[Bar], dict[str, str]]


CHARTS = {
    "ka10079": _Chart("stk_tic_chart_qry", TICK_SCOPES, tick_bars, tick_row),
    "ka10080": _Chart("stk_min_pole_chart_qry", MINUTE_SCOPES, minute_bars, minute_row),
}


class ChartService:
    """ka10079/ka10080 answers, with consistent paging over a bounded set of snapshots."""

    def __init__(self, history: History, rules: KiwoomRestRules) -> None:
        self._history = history
        self._rules = rules
        self._snapshots: OrderedDict[str, list[dict[str, str]]] = OrderedDict()
        self.requests = 0
        self.pages = 0

    def _rows(self, api_id: str, symbol: str, scope: int) -> list[dict[str, str]] | None:
        chart = CHARTS[api_id]
        trades = self._history(symbol)
        if trades is None:
            return None
        return [chart.row(bar) for bar in reversed(chart.bars(trades, scope))]  # newest first

    def answer(self, api_id: str, body: Mapping[str, Any], next_key: str) -> JSONResponse:
        self.requests += 1
        chart = CHARTS[api_id]
        symbol, scope = str(body.get("stk_cd", "")), str(body.get("tic_scope", ""))
        if not symbol or not scope:
            return _answer(1511, "필수 입력 값에 값이 존재하지 않습니다")
        if not scope.isdigit() or int(scope) not in chart.scopes:
            return _answer(1517, "입력 값 형식이 올바르지 않습니다")
        snapshot_id, _, offset_text = next_key.partition(":")
        rows = self._snapshots.get(snapshot_id) if next_key else None
        if rows is None:
            if next_key:
                return _answer(1517, "입력 값 형식이 올바르지 않습니다 (next-key)")
            rows = self._rows(api_id, symbol, int(scope))
            if rows is None:
                return _answer(1902, "종목 정보가 없습니다")
            snapshot_id, offset_text = secrets.token_hex(8), "0"
            self._keep(snapshot_id, rows)
        return self._page(chart, symbol, rows, snapshot_id, int(offset_text or 0))

    def _keep(self, snapshot_id: str, rows: list[dict[str, str]]) -> None:
        self._snapshots[snapshot_id] = rows
        while len(self._snapshots) > SNAPSHOTS_KEPT:
            self._snapshots.popitem(last=False)

    def _page(
        self, chart: _Chart, symbol: str, rows: list[dict[str, str]], snapshot_id: str, offset: int
    ) -> JSONResponse:
        self.pages += 1
        end = offset + self._rules.page_size
        more = end < len(rows)
        page = {"stk_cd": symbol, chart.list_name: rows[offset:end]}
        response = _answer(0, "정상적으로 처리되었습니다", extra=page)
        response.headers["cont-yn"] = "Y" if more else "N"
        response.headers["next-key"] = f"{snapshot_id}:{end}" if more else ""
        return response


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def rest_app(authority: KiwoomAuthority, charts: ChartService, limiter: RateLimiter) -> Starlette:
    """The Starlette app of the Kiwoom REST simulator."""

    async def token(request: Request) -> JSONResponse:
        body = await _json(request)
        if body.get("grant_type") != "client_credentials":
            return _answer(8012, "grant_type이 일치하지 않습니다")
        app_key, secret = str(body.get("appkey", "")), str(body.get("secretkey", ""))
        if not authority.accepts(app_key, secret):
            return _answer(8001, "App Key와 Secret Key 검증에 실패했습니다")
        value, expires = authority.issue(app_key)
        answer = {
            "expires_dt": expires.strftime("%Y%m%d%H%M%S"),
            "token_type": "bearer",
            "token": value,
        }
        return _answer(0, "정상적으로 처리되었습니다", extra=answer)

    async def chart(request: Request) -> JSONResponse:
        api_id = request.headers.get("api-id", "")
        if not api_id:
            return _answer(1501, "API ID가 Null이거나 값이 없습니다")
        if api_id not in CHARTS:
            return _answer(1504, "해당 URI에서는 지원하는 API ID가 아닙니다")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        app_key = authority.app_key_for(value) if scheme.lower() == "bearer" else None
        if app_key is None:
            return _answer(8005, "Token이 유효하지 않습니다")
        if not limiter.allow(app_key):
            return _answer(1700, f"허용된 요청 개수를 초과하였습니다. API ID={api_id}", status=429)
        cont = request.headers.get("cont-yn") == "Y"
        next_key = request.headers.get("next-key", "") if cont else ""
        return charts.answer(api_id, await _json(request), next_key)

    return Starlette(
        routes=[
            Route("/oauth2/token", token, methods=["POST"]),
            Route("/api/dostk/chart", chart, methods=["POST"]),
        ]
    )

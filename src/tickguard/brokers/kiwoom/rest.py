"""Kiwoom REST: access token (au10001) and the generic TR call with ``cont-yn``/``next-key`` paging.

Every Kiwoom TR is a ``POST`` with a JSON body, selected by the ``api-id`` header; every
answer carries ``return_code`` (0 = OK) and ``return_msg`` (reference §2.2–2.3). The client
takes an injected :class:`httpx.AsyncClient` so tests and the simulator plug in at the
transport, and it translates every failure into tickguard's error tree at this boundary:

* ``return_code`` 1700 (or HTTP 429) → :class:`~tickguard.errors.RateLimitedError`
* token/app-key codes 8001–8103 (or HTTP 401/403) and any failed token issue → :class:`AuthError`
* anything else unexpected from a TR call → :class:`~tickguard.errors.ProtocolError`

The token is a :class:`~pydantic.SecretStr`; ``expires_dt`` is KST (reading it as UTC is the
known cause of 8005 reconnect loops, reference §2.10).

Backfill (issue 7): ``chart_body`` and the pure parsers ``parse_tick_chart`` (ka10079, no
cumulative volume) and ``parse_minute_chart`` (ka10080); pages come from :meth:`KiwoomRest.call`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from tickguard.brokers import MAX_NUMBER
from tickguard.errors import (
    AuthError,
    DecodeError,
    ProtocolError,
    RateLimitedError,
    TickguardError,
)
from tickguard.models import KST
from tickguard.settings import AppCredential

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/token"  # noqa: S105 (a URL path, not a secret)
TOKEN_API_ID = "au10001"  # noqa: S105 (a TR id, not a secret)
CHART_PATH = "/api/dostk/chart"
RATE_LIMITED = 1700
AUTH_CODES = range(8001, 8104)
JSON_CONTENT = "application/json;charset=UTF-8"


@dataclass(frozen=True, slots=True)
class KiwoomToken:
    """An access token and the moment it stops working (tz-aware)."""

    token: SecretStr
    token_type: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    """One answer of a TR call: its body and whether more pages follow."""

    body: dict[str, Any]
    cont: bool
    next_key: str


def parse_expires_dt(raw: object) -> datetime:
    """``YYYYMMDDHHMMSS`` in Asia/Seoul → aware datetime."""
    if not isinstance(raw, str) or len(raw) != 14 or not raw.isdigit():
        raise AuthError(f"token response has a malformed expires_dt: {raw!r}")
    try:
        return datetime.strptime(raw, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        raise AuthError(f"token response has an impossible expires_dt: {raw!r}") from None


def _body(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    if response.status_code == 429:
        raise RateLimitedError(f"{what}: HTTP 429")
    if response.status_code in (401, 403):
        raise AuthError(f"{what}: HTTP {response.status_code}")
    raise ProtocolError(f"{what}: HTTP {response.status_code}, body is not a JSON object")


def _check(body: Mapping[str, Any], what: str) -> None:
    """Raise the tickguard error that ``return_code`` stands for (0 passes)."""
    code = body.get("return_code")
    if code in (0, "0"):
        return
    message = f"{what}: return_code={code} {body.get('return_msg', '')}".strip()
    try:
        numeric = int(code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ProtocolError(message) from None
    if numeric == RATE_LIMITED:
        raise RateLimitedError(message)
    if numeric in AUTH_CODES:
        raise AuthError(message)
    raise ProtocolError(message)


class KiwoomRest:
    """Async Kiwoom REST client over an injected ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")

    async def _post(
        self, path: str, headers: Mapping[str, str], body: Mapping[str, Any], what: str
    ) -> httpx.Response:
        try:
            return await self._http.post(self._base + path, headers=dict(headers), json=body)
        except httpx.HTTPError as exc:
            raise ProtocolError(f"{what}: {type(exc).__name__}: {exc}") from exc

    async def issue_token(self, credential: AppCredential) -> KiwoomToken:
        """au10001: app key + secret → access token. Every failure is an :class:`AuthError`."""
        what = f"kiwoom token for {credential.name}"
        payload = {
            "grant_type": "client_credentials",
            "appkey": credential.app_key.get_secret_value(),
            "secretkey": credential.app_secret.get_secret_value(),
        }
        headers = {"Content-Type": JSON_CONTENT, "api-id": TOKEN_API_ID}
        try:
            body = _body(await self._post(TOKEN_PATH, headers, payload, what), what)
            _check(body, what)
        except RateLimitedError:
            raise
        except TickguardError as exc:
            raise AuthError(str(exc)) from exc
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise AuthError(f"{what}: response has no token")
        expires_at = parse_expires_dt(body.get("expires_dt"))
        log.info("kiwoom token issued for %s, expires %s", credential.name, expires_at.isoformat())
        return KiwoomToken(SecretStr(token), str(body.get("token_type", "bearer")), expires_at)

    async def call(
        self, path: str, api_id: str, body: Mapping[str, Any], token: SecretStr, next_key: str = ""
    ) -> Page:
        """One TR request; pass the previous page's ``next_key`` to continue."""
        headers = {
            "Content-Type": JSON_CONTENT,
            "api-id": api_id,
            "authorization": f"Bearer {token.get_secret_value()}",
        }
        if next_key:
            headers["cont-yn"] = "Y"
            headers["next-key"] = next_key
        response = await self._post(path, headers, body, api_id)
        answer = _body(response, api_id)
        _check(answer, api_id)
        cont = response.headers.get("cont-yn", "N") == "Y"
        return Page(answer, cont, response.headers.get("next-key", "") if cont else "")

    async def pages(
        self,
        path: str,
        api_id: str,
        body: Mapping[str, Any],
        token: SecretStr,
        max_pages: int = 1000,
    ) -> AsyncIterator[Page]:
        """Every page of a TR, following ``cont-yn: Y`` until the server says ``N``.

        ``max_pages`` bounds a server that never stops continuing; hitting it raises.
        """
        next_key = ""
        for _ in range(max_pages):
            page = await self.call(path, api_id, body, token, next_key)
            yield page
            if not page.cont:
                return
            if not page.next_key:
                raise ProtocolError(f"{api_id}: cont-yn is Y but next-key is empty")
            next_key = page.next_key
        raise ProtocolError(f"{api_id}: still continuing after {max_pages} pages")


# -- backfill charts (reference §2.7): ka10079 ticks, ka10080 minute bars ------------------------

TICK_CHART = "ka10079"
MINUTE_CHART = "ka10080"


@dataclass(frozen=True, slots=True)
class KiwoomTickRow:
    """One ka10079 row at ``tic_scope`` 1: a trade without cumulative volume."""

    ts: datetime
    price: int
    qty: int


@dataclass(frozen=True, slots=True)
class KiwoomBarRow:
    """One ka10080 row at ``tic_scope`` 1 (``minute`` as Kiwoom stamps it)."""

    minute: datetime
    open: int
    high: int
    low: int
    close: int
    volume: int
    cum_volume: int


def chart_body(symbol: str, scope: int = 1, base_day: date | None = None) -> dict[str, str]:
    """The ka10079/ka10080 request body (``base_dt`` only for ka10080's past days)."""
    body = {"stk_cd": symbol, "tic_scope": str(scope), "upd_stkpc_tp": "0"}
    if base_day is not None:
        body["base_dt"] = base_day.strftime("%Y%m%d")
    return body


def _cntr_tm(raw: object) -> datetime:
    if not isinstance(raw, str) or len(raw) != 14 or not raw.isdigit():
        raise DecodeError("kiwoom_chart_time", repr(raw))
    try:
        return datetime.strptime(raw, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        raise DecodeError("kiwoom_chart_time", repr(raw)) from None


def _num(row: Mapping[str, Any], name: str) -> int:
    """Kiwoom numbers are strings, prices sign-prefixed against the previous close."""
    raw = row.get(name)
    try:
        number = abs(int(str(raw)))
    except ValueError:
        raise DecodeError("kiwoom_chart_number", f"{name}={str(raw)[:32]!r}") from None
    if number > MAX_NUMBER:
        raise DecodeError("kiwoom_chart_number", f"{name}={str(raw)[:32]!r} out of range")
    return number


def _chart_rows(body: Mapping[str, Any], list_name: str) -> list[Mapping[str, Any]]:
    rows = body.get(list_name, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DecodeError("kiwoom_chart_rows", f"{list_name} is not a list of objects")
    return rows


def parse_tick_chart(body: Mapping[str, Any]) -> list[KiwoomTickRow]:
    """ka10079 ``stk_tic_chart_qry`` (newest first) → rows in the same order."""
    return [
        KiwoomTickRow(_cntr_tm(r.get("cntr_tm")), _num(r, "cur_prc"), _num(r, "trde_qty"))
        for r in _chart_rows(body, "stk_tic_chart_qry")
    ]


def parse_minute_chart(body: Mapping[str, Any]) -> list[KiwoomBarRow]:
    """ka10080 ``stk_min_pole_chart_qry`` (newest first) → rows in the same order."""
    return [
        KiwoomBarRow(
            _cntr_tm(r.get("cntr_tm")),
            _num(r, "open_pric"),
            _num(r, "high_pric"),
            _num(r, "low_pric"),
            _num(r, "cur_prc"),
            _num(r, "trde_qty"),
            _num(r, "acc_trde_qty"),
        )
        for r in _chart_rows(body, "stk_min_pole_chart_qry")
    ]

"""KIS REST authentication: the access token (``/oauth2/tokenP``) and the websocket approval
key (``/oauth2/Approval``), over an injected ``httpx.AsyncClient``.

The caller owns the client, so tests hand in one with a ``MockTransport`` or pointed at the
simulator, and production shares one connection pool. httpx and JSON failures become
:class:`~tickguard.errors.AuthError`; KIS's "too soon / too many" codes (EGW00133 token
re-issue within a minute, EGW00201 requests per second) become
:class:`~tickguard.errors.RateLimitedError` whatever the HTTP status, because KIS sends them
with 403, 500 or even 200. App keys, secrets, tokens and approval keys are ``SecretStr`` and
appear in no message or log line.

Backfill (issue 7): :class:`KisQuotations` pages FHPST01060000 (per-trade rows, time cursor),
FHKST03010200 (today's minute bars, 30 per call) and FHKST03010230 (past days, 120 per
call), with pure parsers ``parse_tick_rows`` / ``parse_bar_rows``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from tickguard.brokers import MAX_NUMBER
from tickguard.errors import AuthError, DecodeError, ProtocolError, RateLimitedError
from tickguard.models import KST
from tickguard.settings import AppCredential, KisSettings

logger = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/tokenP"  # noqa: S105 - a URL path, not a secret
APPROVAL_PATH = "/oauth2/Approval"
RATE_LIMIT_CODES = frozenset({"EGW00133", "EGW00201"})
EXPIRY_FORMAT = "%Y-%m-%d %H:%M:%S"
_HEADERS = {"content-type": "application/json; charset=utf-8", "accept": "application/json"}


@dataclass(frozen=True, slots=True)
class KisToken:
    """A REST access token and when KIS says it expires (KST, tz-aware)."""

    access_token: SecretStr
    token_type: str
    expires_at: datetime


def _code_and_message(doc: object) -> tuple[str, str]:
    """KIS puts errors in ``msg_cd``/``msg1`` (gateway) or ``error_code``/``error_description``
    (OAuth endpoints)."""
    if not isinstance(doc, dict):
        return "", ""
    code = doc.get("msg_cd") or doc.get("error_code") or ""
    message = doc.get("msg1") or doc.get("error_description") or ""
    return str(code), str(message)


def parse_expiry(text: object) -> datetime:
    """``access_token_token_expired`` ("YYYY-MM-DD HH:MM:SS", KST) → tz-aware datetime."""
    if not isinstance(text, str):
        raise AuthError("KIS token response has no access_token_token_expired")
    try:
        return datetime.strptime(text, EXPIRY_FORMAT).replace(tzinfo=KST)
    except ValueError as exc:
        raise AuthError(f"KIS token expiry {text!r} is not {EXPIRY_FORMAT}") from exc


class KisRestClient:
    """KIS OAuth calls for one environment (``settings.rest_url``)."""

    def __init__(self, http: httpx.AsyncClient, settings: KisSettings) -> None:
        self._http = http
        self._base = settings.rest_url.rstrip("/")

    async def issue_token(self, credential: AppCredential) -> KisToken:
        """``POST /oauth2/tokenP``. KIS returns the same token when asked again within 6 h."""
        doc = await self._post(
            TOKEN_PATH,
            {
                "grant_type": "client_credentials",
                "appkey": credential.app_key.get_secret_value(),
                "appsecret": credential.app_secret.get_secret_value(),
            },
            "token",
        )
        access_token = doc.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise AuthError(f"KIS token response for app {credential.name} has no access_token")
        token = KisToken(
            access_token=SecretStr(access_token),
            token_type=str(doc.get("token_type") or "Bearer"),
            expires_at=parse_expiry(doc.get("access_token_token_expired")),
        )
        logger.info(
            "KIS access token issued for app %s, expires %s", credential.name, token.expires_at
        )
        return token

    async def issue_approval_key(self, credential: AppCredential) -> SecretStr:
        """``POST /oauth2/Approval`` (the secret goes in ``secretkey``, not ``appsecret``)."""
        doc = await self._post(
            APPROVAL_PATH,
            {
                "grant_type": "client_credentials",
                "appkey": credential.app_key.get_secret_value(),
                "secretkey": credential.app_secret.get_secret_value(),
            },
            "approval key",
        )
        key = doc.get("approval_key")
        if not isinstance(key, str) or not key:
            raise AuthError(f"KIS approval response for app {credential.name} has no approval_key")
        logger.info("KIS websocket approval key issued for app %s", credential.name)
        return SecretStr(key)

    async def _post(self, path: str, body: dict[str, str], what: str) -> dict[str, Any]:
        """POST JSON and return the JSON object, or raise from tickguard's error tree."""
        try:
            response = await self._http.post(self._base + path, json=body, headers=_HEADERS)
        except httpx.HTTPError as exc:
            raise AuthError(f"KIS {what} request failed: {type(exc).__name__}") from exc
        try:
            doc: object = response.json()
        except ValueError:
            doc = None
        code, message = _code_and_message(doc)
        if code in RATE_LIMIT_CODES:
            raise RateLimitedError(f"KIS {what}: {code} {message}".rstrip())
        failed = isinstance(doc, dict) and str(doc.get("rt_cd", "0")) != "0"
        if response.is_error or failed or not isinstance(doc, dict):
            shape = "" if isinstance(doc, dict) else " (body is not a JSON object)"
            raise AuthError(
                f"KIS {what} refused: HTTP {response.status_code} {code} {message}{shape}".rstrip()
            )
        return doc


# -- backfill endpoints (reference §1.9, §1.10) ------------------------------------------------

QUOTATIONS = "/uapi/domestic-stock/v1/quotations"
TICKS_PATH = QUOTATIONS + "/inquire-time-itemconclusion"
TICKS_TR = "FHPST01060000"
TODAY_BARS_PATH = QUOTATIONS + "/inquire-time-itemchartprice"
TODAY_BARS_TR = "FHKST03010200"
TODAY_BARS_ROWS = 30
DAILY_BARS_PATH = QUOTATIONS + "/inquire-time-dailychartprice"
DAILY_BARS_TR = "FHKST03010230"
DAILY_BARS_ROWS = 120
TOKEN_CODES = frozenset({"EGW00121", "EGW00123"})
"""Invalid / expired token: the cached token must be dropped and a new one fetched."""


@dataclass(frozen=True, slots=True)
class KisTickRow:
    """One FHPST01060000 row: a trade with KIS's cumulative volume after it."""

    ts: datetime
    price: int
    qty: int
    cum_volume: int


@dataclass(frozen=True, slots=True)
class KisBarRow:
    """One minute-bar row (FHKST03010200 / FHKST03010230); ``minute`` as KIS stamps it."""

    minute: datetime
    open: int
    high: int
    low: int
    close: int
    volume: int


def _kst(day_text: str, hhmmss: str) -> datetime:
    try:
        return datetime.strptime(day_text + hhmmss, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError as exc:
        raise DecodeError("kis_rest_time", f"{day_text} {hhmmss}") from exc


def _int(row: dict[str, Any], *names: str) -> int:
    """The first present field of ``names`` as an int (KIS sends numbers as strings)."""
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            try:
                number = abs(int(str(value)))
            except ValueError as exc:
                raise DecodeError("kis_rest_number", f"{name}={str(value)[:32]!r}") from exc
            if number > MAX_NUMBER:
                raise DecodeError("kis_rest_number", f"{name}={str(value)[:32]!r} out of range")
            return number
    raise DecodeError("kis_rest_field_missing", "/".join(names))


def _rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rows = doc.get("output2")
    if rows is None:
        return []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DecodeError("kis_rest_output2", "output2 is not a list of objects")
    return rows


def parse_tick_rows(doc: dict[str, Any], day: date) -> list[KisTickRow]:
    """FHPST01060000 ``output2`` (newest first) → rows in the same order.

    The price field is ``stck_pbpr`` in KIS's doc and ``stck_prpr`` in code that reads live
    answers (UNCONFIRMED, reference §1.10c): either is accepted.
    """
    ymd = day.strftime("%Y%m%d")
    return [
        KisTickRow(
            ts=_kst(ymd, str(row.get("stck_cntg_hour", ""))),
            price=_int(row, "stck_prpr", "stck_pbpr"),
            qty=_int(row, "cnqn", "cntg_vol"),
            cum_volume=_int(row, "acml_vol"),
        )
        for row in _rows(doc)
        if row.get("stck_cntg_hour")
    ]


def parse_bar_rows(doc: dict[str, Any]) -> list[KisBarRow]:
    """FHKST03010200 / FHKST03010230 ``output2`` (newest first) → rows in the same order."""
    return [
        KisBarRow(
            minute=_kst(str(row.get("stck_bsop_date", "")), str(row["stck_cntg_hour"])),
            open=_int(row, "stck_oprc"),
            high=_int(row, "stck_hgpr"),
            low=_int(row, "stck_lwpr"),
            close=_int(row, "stck_prpr"),
            volume=_int(row, "cntg_vol"),
        )
        for row in _rows(doc)
        if row.get("stck_cntg_hour")
    ]


class KisQuotations:
    """The intraday quotation GETs the backfill needs, one page per call.

    No retries here: the caller paces calls with a shared limiter and decides what a
    :class:`RateLimitedError` (EGW00201) or an :class:`AuthError` (expired token) is worth.
    """

    def __init__(self, http: httpx.AsyncClient, settings: KisSettings) -> None:
        self._http = http
        self._base = settings.rest_url.rstrip("/")
        self._custtype = settings.custtype

    async def ticks(
        self, token: SecretStr, credential: AppCredential, symbol: str, day: date, hour: str
    ) -> list[KisTickRow]:
        """Trades at or before ``hour`` (HHMMSS), newest first (time cursor paging)."""
        params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol, "FID_INPUT_HOUR_1": hour}
        doc = await self.get(TICKS_PATH, TICKS_TR, params, token, credential)
        return parse_tick_rows(doc, day)

    async def today_bars(
        self, token: SecretStr, credential: AppCredential, symbol: str, hour: str
    ) -> list[KisBarRow]:
        """Today's minute bars at or before ``hour``, newest first, at most 30."""
        params = {
            "FID_ETC_CLS_CODE": "",
            "FID_COND_MRKT_DIV_CODE": "J",
            "FID_INPUT_ISCD": symbol,
            "FID_INPUT_HOUR_1": hour,
            "FID_PW_DATA_INCU_YN": "N",
        }
        doc = await self.get(TODAY_BARS_PATH, TODAY_BARS_TR, params, token, credential)
        return parse_bar_rows(doc)

    async def daily_bars(
        self, token: SecretStr, credential: AppCredential, symbol: str, day: date, hour: str
    ) -> list[KisBarRow]:
        """A past day's minute bars at or before ``hour``, newest first, at most 120."""
        params = {
            "FID_COND_MRKT_DIV_CODE": "J",
            "FID_INPUT_ISCD": symbol,
            "FID_INPUT_HOUR_1": hour,
            "FID_INPUT_DATE_1": day.strftime("%Y%m%d"),
            "FID_PW_DATA_INCU_YN": "N",
            "FID_FAKE_TICK_INCU_YN": "",
        }
        doc = await self.get(DAILY_BARS_PATH, DAILY_BARS_TR, params, token, credential)
        return parse_bar_rows(doc)

    async def get(
        self,
        path: str,
        tr_id: str,
        params: dict[str, str],
        token: SecretStr,
        credential: AppCredential,
    ) -> dict[str, Any]:
        """One quotation GET; KIS's codes become tickguard errors whatever the HTTP status."""
        headers = {
            **_HEADERS,
            "authorization": f"Bearer {token.get_secret_value()}",
            "appkey": credential.app_key.get_secret_value(),
            "appsecret": credential.app_secret.get_secret_value(),
            "tr_id": tr_id,
            "tr_cont": "",
            "custtype": self._custtype,
        }
        try:
            response = await self._http.get(self._base + path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ProtocolError(f"KIS {tr_id} request failed: {type(exc).__name__}") from exc
        try:
            doc: object = response.json()
        except ValueError:
            doc = None
        code, message = _code_and_message(doc)
        if code in RATE_LIMIT_CODES:
            raise RateLimitedError(f"KIS {tr_id}: {code} {message}".rstrip())
        if code in TOKEN_CODES:
            raise AuthError(f"KIS {tr_id}: {code} {message}".rstrip())
        if not isinstance(doc, dict) or response.is_error or str(doc.get("rt_cd", "0")) != "0":
            raise ProtocolError(f"KIS {tr_id}: HTTP {response.status_code} {code} {message}")
        return doc

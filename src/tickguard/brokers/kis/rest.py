"""KIS REST authentication: the access token (``/oauth2/tokenP``) and the websocket approval
key (``/oauth2/Approval``), over an injected ``httpx.AsyncClient``.

The caller owns the client, so tests hand in one with a ``MockTransport`` or pointed at the
simulator, and production shares one connection pool. httpx and JSON failures become
:class:`~tickguard.errors.AuthError`; KIS's "too soon / too many" codes (EGW00133 token
re-issue within a minute, EGW00201 requests per second) become
:class:`~tickguard.errors.RateLimitedError` whatever the HTTP status, because KIS sends them
with 403, 500 or even 200. App keys, secrets, tokens and approval keys are ``SecretStr`` and
appear in no message or log line. Backfill endpoints belong to a later issue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from tickguard.errors import AuthError, RateLimitedError
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

"""The simulator's KIS REST side: ``/oauth2/tokenP`` and ``/oauth2/Approval`` (§1.2, §1.3),
and the intraday quotation TRs of :mod:`tickguard.sim.kis_history` (§1.10) when given.

Token rules as KIS documents them: re-issuing within 6 h returns the same token; asking again
within a minute of the last issue is refused with ``EGW00133``. Error bodies carry KIS's
``error_code``/``error_description`` pair (what python-kis surfaces for EGW00133) and, for
clients that look for the REST envelope, ``rt_cd``/``msg_cd``/``msg1`` too — the exact error
body shape is a simulator choice. Approval keys are tied to the app key that asked for them;
the websocket side resolves a session's app key through :meth:`KisAuthority.app_key_for`.

Served by uvicorn inside the simulator's own event loop; uvicorn's signal capture is turned
off so the host (CLI or test) keeps Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tickguard.errors import StackError
from tickguard.models import KST
from tickguard.sim.kis_history import KisHistoryService

MAX_APPROVALS = 10_000
"""Approval keys remembered at once (a reconnect loop that asks each time stays bounded)."""


@dataclass(slots=True)
class _Token:
    value: str
    issued_at: float
    expires_at: float
    last_answer_at: float


@dataclass(frozen=True, slots=True)
class TokenRules:
    min_interval_s: float = 60.0
    """EGW00133 when asked again sooner than this after the last answer (KIS: 1 per minute)."""
    reuse_s: float = 6 * 3600.0
    """Within this window the same token is returned (KIS: 6 h)."""
    ttl_s: float = 86_400.0


def _error(status: int, code: str, text: str) -> JSONResponse:
    body = {
        "error_code": code,
        "error_description": text,
        "rt_cd": "1",
        "msg_cd": code,
        "msg1": text,
    }
    return JSONResponse(body, status_code=status)


class KisAuthority:
    """Tokens and approval keys; which app keys and secrets are accepted."""

    def __init__(
        self,
        apps: Mapping[str, SecretStr] | None,
        rules: TokenRules,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._apps = dict(apps) if apps is not None else None
        self._rules = rules
        self._now = now
        self._tokens: dict[str, _Token] = {}
        self._approvals: dict[str, str] = {}
        self.tokens_issued = 0
        self.token_refusals = 0
        self.approvals_issued = 0

    def accepts(self, app_key: str, secret: str) -> bool:
        if not app_key or not secret:
            return False
        if self._apps is None:
            return True
        known = self._apps.get(app_key)
        return known is not None and secrets.compare_digest(known.get_secret_value(), secret)

    def app_key_for(self, approval_key: str) -> str | None:
        return self._approvals.get(approval_key)

    def issued_secrets(self) -> list[str]:
        """Every access token and approval key handed out (still remembered): what a
        secrets audit searches the logs, artifacts and stores for."""
        return [tok.value for tok in self._tokens.values()] + list(self._approvals)

    def token(self, app_key: str) -> dict[str, Any] | None:
        """The tokenP answer for ``app_key``, or None when it asks again too soon."""
        now = self._now()
        tok = self._tokens.get(app_key)
        if tok is not None and now - tok.last_answer_at < self._rules.min_interval_s:
            self.token_refusals += 1
            return None
        if tok is None or now - tok.issued_at >= self._rules.reuse_s or now >= tok.expires_at:
            value = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9." + secrets.token_urlsafe(192)
            tok = _Token(value, now, now + self._rules.ttl_s, now)
            self._tokens[app_key] = tok
            self.tokens_issued += 1
        tok.last_answer_at = now
        expires = datetime.fromtimestamp(tok.expires_at, KST).strftime("%Y-%m-%d %H:%M:%S")
        return {
            "access_token": tok.value,
            "access_token_token_expired": expires,
            "token_type": "Bearer",
            "expires_in": int(tok.expires_at - now),
        }

    def app_key_for_token(self, token: str) -> str | None:
        """The app key a live access token was issued to (quotation calls check it)."""
        now = self._now()
        for app_key, tok in self._tokens.items():
            if secrets.compare_digest(tok.value, token) and now < tok.expires_at:
                return app_key
        return None

    def approval(self, app_key: str) -> str:
        key = str(uuid.uuid4())
        if len(self._approvals) >= MAX_APPROVALS:  # bounded: forget the oldest key
            del self._approvals[next(iter(self._approvals))]
        self._approvals[key] = app_key
        self.approvals_issued += 1
        return key


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def rest_app(authority: KisAuthority, history: KisHistoryService | None = None) -> Starlette:
    """OAuth routes, plus the intraday quotation routes when ``history`` is given."""

    async def token_p(request: Request) -> JSONResponse:
        body = await _json(request)
        if body.get("grant_type") != "client_credentials":
            return _error(403, "EGW00002", "grant_type 이 유효하지 않습니다.")
        app_key, secret = str(body.get("appkey", "")), str(body.get("appsecret", ""))
        if not authority.accepts(app_key, secret):
            return _error(403, "EGW00103", "유효하지 않은 AppKey입니다.")
        answer = authority.token(app_key)
        if answer is None:
            return _error(403, "EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)")
        return JSONResponse(answer)

    async def approval(request: Request) -> JSONResponse:
        body = await _json(request)
        app_key, secret = str(body.get("appkey", "")), str(body.get("secretkey", ""))
        if body.get("grant_type") != "client_credentials" or not authority.accepts(app_key, secret):
            return _error(403, "EGW00103", "유효하지 않은 AppKey입니다.")
        return JSONResponse({"approval_key": authority.approval(app_key)})

    return Starlette(
        routes=[
            Route("/oauth2/tokenP", token_p, methods=["POST"]),
            Route("/oauth2/Approval", approval, methods=["POST"]),
            *(history.routes() if history is not None else []),
        ]
    )


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the process hosting the simulator owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class RestServer:
    """uvicorn on a loopback port in the current event loop."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = _QuietServer(config)
        # Bind here, not in uvicorn: a busy port is then an OSError for the caller instead
        # of uvicorn's sys.exit inside a task.
        self._sock = socket.create_server((host, port))
        self.port: int = self._sock.getsockname()[1]

    _task: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 10.0) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if self._task.done() or time.monotonic() > deadline:
                raise StackError("the simulator's REST server did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            self._sock.close()
            return
        self._server.should_exit = True
        await self._task

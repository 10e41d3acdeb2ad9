"""KIS as the supervisor sees it: limits, endpoints, credentials and session factory.

Everything broker-specific the supervisor needs is here, so ``tickguard.stream`` never asks
which broker it is talking to (it looks the traits up in ``tickguard.brokers.registry``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import httpx
from pydantic import SecretStr

from tickguard.brokers.kis.codec import KisSession
from tickguard.brokers.kis.rest import KisRestClient
from tickguard.models import Broker
from tickguard.settings import AppCredential, Settings


@dataclass(slots=True)
class KisTraits:
    """KIS: one websocket session per app key, 41 registrations over all TRs (settings)."""

    broker: Broker = Broker.KIS

    def max_registrations(self, settings: Settings) -> int:
        return settings.kis.max_registrations

    def ws_url(self, settings: Settings) -> str:
        return settings.kis.ws_url

    def credentials(self, settings: Settings) -> list[AppCredential]:
        return list(settings.kis.apps)

    async def authorize(
        self, http: httpx.AsyncClient, settings: Settings, credential: AppCredential
    ) -> str:
        """A websocket approval key from ``/oauth2/Approval`` (secret: do not log it)."""
        key = await KisRestClient(http, settings.kis).issue_approval_key(credential)
        return key.get_secret_value()

    def new_session(self, authorization: str, trading_day: date, settings: Settings) -> KisSession:
        return KisSession(SecretStr(authorization), trading_day, settings.kis.custtype)

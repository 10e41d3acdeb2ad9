"""What the broker-neutral supervisor needs to know about Kiwoom.

Kiwoom authorizes a websocket session with the REST access token itself (au10001), sent in
the LOGIN message; the registration cap per session is not published, so it comes from
``settings.kiwoom.max_registrations``. Everything else about Kiwoom lives in ``codec.py``.
"""

from __future__ import annotations

from datetime import date

import httpx

from tickguard.brokers.kiwoom.codec import KiwoomSession
from tickguard.brokers.kiwoom.rest import KiwoomRest
from tickguard.models import Broker
from tickguard.settings import AppCredential, Settings


class KiwoomTraits:
    """Implements :class:`~tickguard.brokers.base.BrokerTraits` for Kiwoom."""

    broker: Broker = Broker.KIWOOM

    def max_registrations(self, settings: Settings) -> int:
        """UNCONFIRMED by Kiwoom (reference §2.5), hence a setting."""
        return settings.kiwoom.max_registrations

    def ws_url(self, settings: Settings) -> str:
        return settings.kiwoom.ws_url

    def credentials(self, settings: Settings) -> list[AppCredential]:
        return list(settings.kiwoom.apps)

    async def authorize(
        self, http: httpx.AsyncClient, settings: Settings, credential: AppCredential
    ) -> str:
        """A fresh access token; the caller keeps it out of logs."""
        token = await KiwoomRest(http, settings.kiwoom.rest_url).issue_token(credential)
        return token.token.get_secret_value()

    def new_session(
        self, authorization: str, trading_day: date, settings: Settings
    ) -> KiwoomSession:
        """REAL messages carry only HHMMSS: the session is bound to one trading day."""
        return KiwoomSession(authorization, trading_day)

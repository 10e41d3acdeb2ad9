"""The brokers' history APIs as :class:`~tickguard.backfill.fetch.HistorySource` objects.

KIS: FHPST01060000 per-trade rows carry the cumulative volume, so they map straight onto the
trade's natural key; they are paged by time cursor, newest first, one window at a time.
Minute bars come from FHKST03010200 for today (30 per call) and FHKST03010230 for past
days (120 per call). Kiwoom: ka10079 has no cumulative volume, so the whole day's tick list
is fetched (``cont-yn``/``next-key``) and the cumulative volume derived from it in order;
the run checks the derived keys against stored rows before writing. ka10080 gives bars.

``build_sources`` shards symbols over the broker's app keys: one limiter, one shared token
and one :class:`Pacer` per app key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial

import httpx
import redis.asyncio as aioredis
from pydantic import SecretStr

from tickguard.backfill.fetch import FetchStats, HistorySource, Pacer, Window
from tickguard.backfill.tokens import SharedToken
from tickguard.brokers.kis.rest import KisBarRow, KisQuotations, KisRestClient, KisTickRow
from tickguard.brokers.kiwoom import rest as kw
from tickguard.errors import SettingsError
from tickguard.models import KST, Broker, MinuteBar, Source, Trade
from tickguard.ratelimit import RedisRateLimiter
from tickguard.settings import AppCredential, Settings

ONE_S = timedelta(seconds=1)
MAX_PAGES = 5_000


def _hour(ts: datetime) -> str:
    return ts.astimezone(KST).strftime("%H%M%S")


def _bar(broker: Broker, symbol: str, day: date, row: KisBarRow | kw.KiwoomBarRow) -> MinuteBar:
    return MinuteBar(broker, symbol, day, row.minute, row.open, row.high, row.low, row.close,
                     row.volume, Source.REST)  # fmt: skip


@dataclass(slots=True)
class KisSource:
    pacer: Pacer
    api: KisQuotations
    credential: AppCredential
    day: date
    broker: Broker = Broker.KIS
    derives_cum_volume: bool = False

    async def minute_bars(self, symbol: str, start: datetime, end: datetime) -> list[MinuteBar]:
        today = datetime.now(KST).date() == self.day
        rows_per_call = 30 if today else 120
        cursor, found = end - ONE_S, {}
        for _ in range(MAX_PAGES):
            rows = await self.pacer.call(partial(self._bars, symbol, cursor, today))
            found.update({r.minute: r for r in rows if start <= r.minute < end})
            if len(rows) < rows_per_call or min(r.minute for r in rows) <= start:
                break
            cursor = min(r.minute for r in rows) - ONE_S
        return [_bar(self.broker, symbol, self.day, found[m]) for m in sorted(found)]

    async def _bars(
        self, symbol: str, cursor: datetime, today: bool, token: SecretStr
    ) -> list[KisBarRow]:
        if today:
            return await self.api.today_bars(token, self.credential, symbol, _hour(cursor))
        return await self.api.daily_bars(token, self.credential, symbol, self.day, _hour(cursor))

    async def trades(self, symbol: str, windows: list[Window]) -> list[Trade]:
        rows: dict[int, KisTickRow] = {}
        for start, end in windows:
            rows.update(await self._window(symbol, start, end))
        now = datetime.now(UTC)
        return [Trade(self.broker, symbol, self.day, r.ts, r.price, r.qty, None, r.cum_volume, now,
                      Source.REST) for _, r in sorted(rows.items())]  # fmt: skip

    async def _window(self, symbol: str, start: datetime, end: datetime) -> dict[int, KisTickRow]:
        """Page back from ``end`` by whole seconds until ``start`` is passed."""
        cursor, found = end - ONE_S, {}
        for _ in range(MAX_PAGES):
            hour = _hour(cursor)
            rows = await self.pacer.call(
                partial(self.api.ticks, credential=self.credential, symbol=symbol, day=self.day,
                        hour=hour)
            )  # fmt: skip
            found.update({r.cum_volume: r for r in rows if start <= r.ts < end})
            if not rows:
                break
            earliest = min(r.ts for r in rows)
            if earliest < start:
                break
            cursor = earliest - ONE_S
        return found


@dataclass(slots=True)
class KiwoomSource:
    pacer: Pacer
    api: kw.KiwoomRest
    day: date
    broker: Broker = Broker.KIWOOM
    derives_cum_volume: bool = True

    async def _pages(self, api_id: str, body: dict[str, str]) -> list[dict[str, object]]:
        bodies, next_key = [], ""
        for _ in range(MAX_PAGES):
            page = await self.pacer.call(
                partial(self.api.call, kw.CHART_PATH, api_id, body, next_key=next_key)
            )
            bodies.append(page.body)
            if not page.cont or not page.next_key:
                break
            next_key = page.next_key
        return bodies

    async def minute_bars(self, symbol: str, start: datetime, end: datetime) -> list[MinuteBar]:
        past = None if datetime.now(KST).date() == self.day else self.day
        bodies = await self._pages(kw.MINUTE_CHART, kw.chart_body(symbol, 1, past))
        rows = {r.minute: r for b in bodies for r in kw.parse_minute_chart(b)}
        return [_bar(self.broker, symbol, self.day, rows[m]) for m in sorted(rows)
                if start <= m < end]  # fmt: skip

    async def trades(self, symbol: str, windows: list[Window]) -> list[Trade]:
        """The whole day, cumulative volume derived in order (ka10079 is newest first)."""
        bodies = await self._pages(kw.TICK_CHART, kw.chart_body(symbol, 1))
        newest_first = [r for b in bodies for r in kw.parse_tick_chart(b)]
        now, cum, out = datetime.now(UTC), 0, []
        for row in reversed(newest_first):
            if row.ts.date() != self.day:
                continue
            cum += row.qty
            out.append(Trade(self.broker, symbol, self.day, row.ts, row.price, row.qty, None, cum,
                             now, Source.REST))  # fmt: skip
        return out


def _credentials(settings: Settings, broker: Broker) -> tuple[list[AppCredential], float]:
    part = settings.kis if broker is Broker.KIS else settings.kiwoom
    if not part.apps:
        raise SettingsError(f"TICKGUARD_{broker.value.upper()}__APPS: no app key to backfill with")
    return list(part.apps), part.rest_rate_per_s


def build_sources(
    settings: Settings,
    broker: Broker,
    symbols: Sequence[str],
    day: date,
    http: httpx.AsyncClient,
    client: aioredis.Redis,
    stats: FetchStats,
    prefix: str,
) -> dict[str, HistorySource]:
    """One source per symbol, symbols sharded round-robin over the broker's app keys."""
    apps, rate = _credentials(settings, broker)
    stats.rate_per_s = rate * min(len(apps), len(symbols))
    sources: list[HistorySource] = []
    for cred in apps:
        limiter = RedisRateLimiter(client, f"{prefix}:ratelimit:{broker.value}:{cred.name}", rate)
        key = f"{prefix}:token:{broker.value}:{cred.name}"
        if broker is Broker.KIS:
            auth = KisRestClient(http, settings.kis)

            async def issue_kis(
                c: AppCredential = cred, a: KisRestClient = auth
            ) -> tuple[SecretStr, datetime]:
                tok = await a.issue_token(c)
                return tok.access_token, tok.expires_at

            pacer = Pacer(limiter, SharedToken(client, key, issue_kis), stats)
            sources.append(KisSource(pacer, KisQuotations(http, settings.kis), cred, day))
        else:
            api = kw.KiwoomRest(http, settings.kiwoom.rest_url)

            async def issue_kw(
                c: AppCredential = cred, a: kw.KiwoomRest = api
            ) -> tuple[SecretStr, datetime]:
                tok = await a.issue_token(c)
                return tok.token, tok.expires_at

            pacer = Pacer(limiter, SharedToken(client, key, issue_kw), stats)
            sources.append(KiwoomSource(pacer, api, day))
    return {s: sources[i % len(sources)] for i, s in enumerate(symbols)}

"""A minimal, real Slack poster on slack-sdk.

Two transports, chosen once from settings: an incoming webhook (``TICKGUARD_SLACK__WEBHOOK_URL``)
or the Web API with a bot token (``TICKGUARD_SLACK__BOT_TOKEN`` + ``channel``; ``base_url``
redirects it, which is how tests reach a local fake Slack). With neither configured the
poster is disabled: :meth:`SlackPoster.post` logs once that alerts are off and returns False.

A failed post never raises into the caller (an alert must not take a collector down); it is
counted in :attr:`SlackPoster.counters` and logged with the error class only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from tickguard.settings import SlackSettings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10


@dataclass(slots=True)
class SlackCounters:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    """Posts asked for while Slack is not configured."""


def alert_blocks(
    title: str, fields: dict[str, str], *, text: str = "", link: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """Block Kit for one alert: a header, an optional paragraph, key/value fields, a link."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}}
    ]
    if text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
    if fields:
        items = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in fields.items()]
        for start in range(0, len(items), 10):  # Slack allows 10 fields per section
            blocks.append({"type": "section", "fields": items[start : start + 10]})
    if link is not None:
        label, url = link
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{url}|{label}>"}]}
        )
    return blocks


class SlackPoster:
    """Posts Block Kit messages to Slack; never raises, counts what happened."""

    def __init__(self, settings: SlackSettings, *, timeout_s: int = DEFAULT_TIMEOUT_S) -> None:
        self._settings = settings
        self._timeout = timeout_s
        self.counters = SlackCounters()
        self._warned_off = False

    @property
    def enabled(self) -> bool:
        return self._settings.webhook_url is not None or self._settings.bot_token is not None

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> bool:
        """Send one message; True when Slack accepted it."""
        if not self.enabled:
            self.counters.skipped += 1
            if not self._warned_off:
                log.warning("Slack is not configured (TICKGUARD_SLACK__*): alerts go to the log")
                self._warned_off = True
            log.warning("alert (not sent): %s", text)
            return False
        try:
            ok = self._send(text, blocks)
        except (SlackApiError, SlackClientError, OSError) as exc:
            ok = False
            log.error("Slack post failed: %s", type(exc).__name__)
        if ok:
            self.counters.sent += 1
        else:
            self.counters.failed += 1
        return ok

    def _send(self, text: str, blocks: list[dict[str, Any]] | None) -> bool:
        cfg = self._settings
        if cfg.webhook_url is not None:
            hook = WebhookClient(url=cfg.webhook_url.get_secret_value(), timeout=self._timeout)
            response = hook.send(text=text, blocks=blocks)
            if response.status_code != 200:
                log.error("Slack webhook answered HTTP %d", response.status_code)
            return response.status_code == 200
        assert cfg.bot_token is not None
        kwargs: dict[str, Any] = {
            "token": cfg.bot_token.get_secret_value(),
            "timeout": self._timeout,
        }
        if cfg.base_url:
            kwargs["base_url"] = cfg.base_url if cfg.base_url.endswith("/") else cfg.base_url + "/"
        reply = WebClient(**kwargs).chat_postMessage(channel=cfg.channel, text=text, blocks=blocks)
        return bool(reply.get("ok", False))

"""The Slack poster against a local fake Slack: webhook and bot-token paths, failures counted."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from fakes.slack import FakeSlack
from tickguard.alerting import SlackPoster, alert_blocks
from tickguard.settings import SlackSettings


def test_webhook_posts_block_kit() -> None:
    with FakeSlack() as slack:
        poster = SlackPoster(SlackSettings(webhook_url=SecretStr(slack.webhook_url)))
        blocks = alert_blocks("collector down", {"broker": "kis"}, text="restart budget spent")
        assert poster.post("collector down", blocks)
        (post,) = slack.wait_for(1, 5)
    assert post["path"].startswith("/services/")
    assert post["payload"]["text"] == "collector down"
    assert post["payload"]["blocks"][0]["text"]["text"] == "collector down"
    assert {"type": "mrkdwn", "text": "*broker*\nkis"} in post["payload"]["blocks"][2]["fields"]
    assert poster.counters.sent == 1 and poster.counters.failed == 0


def test_bot_token_posts_to_channel() -> None:
    with FakeSlack() as slack:
        cfg = SlackSettings(bot_token=SecretStr("xoxb-fake"), channel="#md", base_url=slack.api_url)
        poster = SlackPoster(cfg)
        assert poster.post("hello", alert_blocks("hello", {}))
        (post,) = slack.wait_for(1, 5)
    assert post["path"] == "/api/chat.postMessage"
    assert post["payload"]["channel"] == "#md"
    assert post["payload"]["blocks"][0]["type"] == "header"


def test_failure_is_counted_and_logged_without_the_url(caplog: pytest.LogCaptureFixture) -> None:
    with FakeSlack() as slack:
        slack.fail_with(500)
        poster = SlackPoster(SlackSettings(webhook_url=SecretStr(slack.webhook_url)))
        with caplog.at_level(logging.ERROR, logger="tickguard.alerting"):
            assert not poster.post("x")
        url = slack.webhook_url
    assert poster.counters.failed == 1 and poster.counters.sent == 0
    assert "500" in caplog.text and url not in caplog.text


def test_unreachable_slack_is_counted_not_raised() -> None:
    with FakeSlack() as slack:
        url = slack.webhook_url
    poster = SlackPoster(SlackSettings(webhook_url=SecretStr(url)), timeout_s=2)
    assert not poster.post("x")
    assert poster.counters.failed == 1


def test_unconfigured_slack_skips() -> None:
    poster = SlackPoster(SlackSettings())
    assert not poster.enabled
    assert not poster.post("x")
    assert poster.counters.skipped == 1

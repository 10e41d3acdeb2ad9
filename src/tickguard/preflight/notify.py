"""Slack: is it reachable (before anything needs it), and the verdict message itself."""

from __future__ import annotations

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from tickguard.alerting.slack import SlackPoster, alert_blocks
from tickguard.preflight.model import CheckResult, PreflightReport, Verdict, failed, passed, warned
from tickguard.settings import SlackSettings

TIMEOUT_S = 5
ICON = {Verdict.GO: "GO", Verdict.DEGRADED: "DEGRADED", Verdict.NO_GO: "NO-GO"}


def check_slack(cfg: SlackSettings) -> CheckResult:
    """Bot token: ``auth.test``. Webhook: any HTTP answer from its host (no message sent)."""
    hint = "alerts would not reach anyone: check TICKGUARD_SLACK__* and egress to Slack"
    try:
        if cfg.bot_token is not None:
            kwargs: dict[str, object] = {"token": cfg.bot_token.get_secret_value(),
                                         "timeout": TIMEOUT_S}  # fmt: skip
            if cfg.base_url:
                kwargs["base_url"] = cfg.base_url.rstrip("/") + "/"
            reply = WebClient(**kwargs).auth_test()  # type: ignore[arg-type]
            if not reply.get("ok", False):
                return failed("slack", f"auth.test refused: {reply.get('error')}", hint)
            return passed("slack", "Web API reachable, token accepted")
        if cfg.webhook_url is not None:
            url = httpx.URL(cfg.webhook_url.get_secret_value())
            response = httpx.get(str(url.copy_with(path="/")), timeout=TIMEOUT_S)
            return passed("slack", f"webhook host answers (HTTP {response.status_code})")
    except (SlackApiError, SlackClientError, httpx.HTTPError, OSError) as exc:
        return failed("slack", f"unreachable: {type(exc).__name__}", hint)
    return warned(
        "slack", "not configured", "set TICKGUARD_SLACK__WEBHOOK_URL or __BOT_TOKEN: alerts go "
        "to the log only",
    )  # fmt: skip


def post_verdict(cfg: SlackSettings, report: PreflightReport) -> bool:
    """One message: the verdict, and every check that did not pass with its hint."""
    title = f"tickguard preflight: {ICON[report.verdict]}"
    problems = report.problems()
    fields = {f"{c.status.value.upper()} {c.name}": f"{c.value}\n→ {c.hint}" for c in problems}
    text = (
        f"{len(report.checks)} checks in {report.elapsed_s:.1f} s; "
        f"{len(problems)} need attention" if problems else
        f"all {len(report.checks)} checks passed in {report.elapsed_s:.1f} s"
    )  # fmt: skip
    return SlackPoster(cfg).post(f"{title} — {text}", alert_blocks(title, fields, text=text))

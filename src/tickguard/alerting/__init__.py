"""Alerts to people: Slack through slack-sdk (webhook or bot token from ``settings.slack``).

Why our own wrapper rather than Prefect's or GX's Slack blocks: those refuse loopback hosts
or swallow errors (prefect-gx-notes), so they can neither be tested here nor be trusted to
say when an alert did not go out. This one has timeouts, counts failures and logs them
(never the webhook URL or the token).
"""

from tickguard.alerting.slack import SlackCounters, SlackPoster, alert_blocks

__all__ = ["SlackCounters", "SlackPoster", "alert_blocks"]

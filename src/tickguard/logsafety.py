"""Third-party loggers that print secrets at DEBUG are capped at INFO.

websockets' DEBUG log prints every frame sent and received, and a KIS subscription carries
the approval key, a Kiwoom LOGIN the access token (truncated in the log line, still enough
to recognise and half of it in clear); slack-sdk's webhook client logs the webhook URL, whose
path is the secret. The secrets audit (``tests/integration/test_secrets_audit.py``) runs with
the root logger at DEBUG and found both. Wire-level evidence is the raw recorder's job, and
it keeps sent frames without their credentials.
"""

from __future__ import annotations

import logging

WIRE_LOGGERS = ("websockets.client", "websockets.server", "slack_sdk")


def cap_wire_loggers() -> None:
    """Keep :data:`WIRE_LOGGERS` at INFO or above, whatever the root level becomes."""
    for name in WIRE_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.INFO))

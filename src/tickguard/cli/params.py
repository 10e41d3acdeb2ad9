"""Argument parsers shared by several sub-commands (each a typer usage error when wrong)."""

from __future__ import annotations

from datetime import date, datetime

import typer

from tickguard.models import KST


def trading_day(value: str | None, param_hint: str = "--day") -> date:
    """``YYYY-MM-DD`` → that day; nothing → today in Asia/Seoul."""
    if not value:
        return datetime.now(KST).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"expected YYYY-MM-DD, got {value!r}", param_hint=param_hint
        ) from None

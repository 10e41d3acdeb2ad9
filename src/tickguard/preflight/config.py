"""Settings and the trading calendar: is there a valid configuration and a session today?"""

from __future__ import annotations

from datetime import datetime

from tickguard.brokers.registry import REGISTRY
from tickguard.calendar import TradingCalendar
from tickguard.errors import SettingsError
from tickguard.models import KST
from tickguard.preflight.model import CheckResult, failed, passed, warned
from tickguard.settings import Settings, load_settings


def check_settings() -> tuple[CheckResult, Settings | None]:
    """Read the settings afresh from the environment; the error names the variable."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        return failed("settings", str(exc), "fix the named TICKGUARD_* variable"), None
    brokers = [b.value for b, traits in REGISTRY.items() if traits.credentials(settings)]
    if not brokers:
        return (
            failed("settings", "no broker app keys", "set TICKGUARD_KIS__APPS / KIWOOM__APPS"),
            settings,
        )
    return passed("settings", f"valid; app keys for {', '.join(brokers)}"), settings


def check_calendar(now: datetime, calendar: TradingCalendar | None = None) -> CheckResult:
    """Today's XKRX session and its times (a late open is called out)."""
    cal = calendar or TradingCalendar()
    day = now.astimezone(KST).date()
    session = cal.session(day)
    if session is None:
        nxt = cal.next_trading_day(day)
        return warned(
            "calendar",
            f"{day} is not a trading day; next {nxt}",
            "collectors will exit at once today; nothing to do unless the exchange says otherwise",
        )
    value = f"{day} open {session.open:%H:%M} close {session.close:%H:%M} KST"
    if session.late_open:
        return passed("calendar", f"{value} (late open {session.note})".strip())
    return passed("calendar", value)

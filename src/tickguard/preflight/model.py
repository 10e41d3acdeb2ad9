"""What a preflight says: one :class:`CheckResult` per check, and a verdict over them.

Why a value *and* a hint on every check: the incident's failures were all visible before the
open, but only as stack traces in places nobody looked. A check names what it measured and
what to do about it, so the 08:30 Slack message is enough to act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a check status, not a password
    WARN = "warn"
    FAIL = "fail"


class Verdict(StrEnum):
    GO = "go"
    DEGRADED = "degraded"
    NO_GO = "no-go"

    @property
    def exit_code(self) -> int:
        """0 go, 1 degraded, 2 no-go (``tickguard preflight``)."""
        return {Verdict.GO: 0, Verdict.DEGRADED: 1, Verdict.NO_GO: 2}[self]


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: Status
    value: str
    """What was measured, short and secret-free (a count, a latency, a version, a reason)."""
    hint: str = ""
    """What to do; empty only for a pass that needs nothing."""

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "status": self.status.value,
            "value": self.value,
            "hint": self.hint,
        }


def passed(name: str, value: str, hint: str = "") -> CheckResult:
    return CheckResult(name, Status.PASS, value, hint)


def warned(name: str, value: str, hint: str) -> CheckResult:
    return CheckResult(name, Status.WARN, value, hint)


def failed(name: str, value: str, hint: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, value, hint)


def verdict_of(checks: list[CheckResult]) -> Verdict:
    """Any fail → no-go; any warn → degraded; else go."""
    statuses = {c.status for c in checks}
    if Status.FAIL in statuses:
        return Verdict.NO_GO
    if Status.WARN in statuses:
        return Verdict.DEGRADED
    return Verdict.GO


@dataclass(slots=True)
class PreflightReport:
    checks: list[CheckResult]
    elapsed_s: float
    verdict: Verdict = field(init=False)

    def __post_init__(self) -> None:
        self.verdict = verdict_of(self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "elapsed_s": round(self.elapsed_s, 3),
            "checks": [c.as_dict() for c in self.checks],
        }

    def problems(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status is not Status.PASS]

"""The market-open preflight: every failure of the incident, looked for before 09:00.

:func:`run_preflight` runs the checks concurrently and returns a
:class:`~tickguard.preflight.model.PreflightReport` (verdict go / degraded / no-go);
:func:`~tickguard.preflight.notify.post_verdict` sends it to Slack. ``tickguard preflight``
and the ``preflight`` flow (``flows/preflight.py``) are thin wiring around these two.
"""

from __future__ import annotations

from tickguard.preflight.model import CheckResult, PreflightReport, Status, Verdict
from tickguard.preflight.notify import post_verdict
from tickguard.preflight.runner import run_preflight

__all__ = ["CheckResult", "PreflightReport", "Status", "Verdict", "post_verdict", "run_preflight"]

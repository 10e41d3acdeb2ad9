"""The backfill's outputs for people: a Slack digest and a per-symbol markdown table.

Both are built from :class:`~tickguard.backfill.run.BackfillReport` only, so the flow (which
also publishes the table as a Prefect artifact) and the CLI say exactly the same thing.
"""

from __future__ import annotations

from tickguard.alerting.slack import SlackPoster, alert_blocks
from tickguard.backfill.run import BackfillReport

COLUMNS = ("symbol", "expected vol", "stored vol", "trades filled", "gaps filled",
           "no trades", "unrecoverable", "books unrecov.", "silent", "note")  # fmt: skip


def rows(report: BackfillReport) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for r in report.symbols:
        g = r.gaps
        silent = sum(v for k, v in g.items() if k.startswith("silent_"))
        unrecoverable = g.get("trades_unrecoverable", 0) + g.get("silent_unrecoverable", 0)
        out.append((r.symbol, str(r.expected_volume), str(r.stored_volume), str(r.trades_filled),
                    str(g.get("trades_filled", 0) + g.get("silent_filled", 0)),
                    str(g.get("trades_no_trades", 0) + g.get("silent_no_trades", 0)),
                    str(unrecoverable), str(g.get("books_unrecoverable", 0)), str(silent),
                    r.error))  # fmt: skip
    return out


def markdown(report: BackfillReport) -> str:
    """Per symbol: expected vs stored vs filled vs unrecoverable, then the run's figures."""
    head = f"# Backfill {report.broker.value} {report.day.isoformat()}: {report.status}\n\n"
    if report.status != "done":
        return head + report.reason + "\n"
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(report)]
    totals = report.totals()
    figures = ", ".join(f"{k} {totals[k]}" for k in ("backfill_requests", "rate_limit_errors",
                                                      "budget_used", "busy_s"))  # fmt: skip
    return head + "\n".join(lines) + f"\n\n{figures}\n"


def post_digest(report: BackfillReport, poster: SlackPoster) -> bool:
    """One Slack message: counts for the broker, and the symbols that need a human."""
    t = report.totals()
    title = f"Backfill {report.broker.value} {report.day.isoformat()}: {report.status}"
    if report.status != "done":
        return poster.post(
            f"{title} — {report.reason}", alert_blocks(title, {}, text=report.reason)
        )
    fields = {k.replace("_", " "): str(t[k]) for k in (
        "trades_filled", "gaps_filled", "gaps_no_trades", "gaps_unrecoverable", "silent_losses",
        "books_unrecoverable", "minutes_unrecoverable", "backfill_requests",
        "rate_limit_errors")}  # fmt: skip
    attention = [r.symbol for r in report.symbols if r.error or r.minutes_unrecoverable]
    text = ("Needs attention: " + ", ".join(attention)) if attention else "Every minute reconciled."
    per_symbol = "; ".join(
        f"{r.symbol} +{r.trades_filled}" for r in report.symbols if r.trades_filled
    )
    if per_symbol:
        text += f"\nFilled per symbol: {per_symbol}"
    summary = (
        f"{title}: {t['trades_filled']} trades filled, {t['gaps_unrecoverable']} unrecoverable"
    )
    return poster.post(summary, alert_blocks(title, fields, text=text))

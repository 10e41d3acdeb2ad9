"""The metrics endpoints over real HTTP while a drill runs (KIS simulator → collector →
Redis → persist → PostgreSQL, all in this process): the counters must move between scrapes,
and every series served must be one tickguard declares (EXPORTED)."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tickguard.drill.runner import DrillOptions, run_drill
from tickguard.drill.scenarios import scenario
from tickguard.metrics import EXPORTED
from tickguard.settings import MetricsSettings, Settings

pytestmark = pytest.mark.slow

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, labels): value}`` of one scrape; {} when nothing listens yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def total(samples: dict[Any, float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def poll(port: int, ok: Any, within_s: float) -> dict[Any, float]:
    deadline = time.monotonic() + within_s
    last: dict[Any, float] = {}
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(scrape, port)
        if last and ok(last):
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"condition not met within {within_s}s; last scrape: {sorted(last)[:40]}")


async def test_counters_move_while_a_flap_drill_runs(redis_url: str) -> None:
    cport, pport = _free_port(), _free_port()
    metrics = MetricsSettings(collector_port=cport, persist_port=pport)
    base = Settings(metrics=metrics)
    opts = DrillOptions(scenario("flap"), symbols=4, minutes=1.5, speed=6.0)
    drill = asyncio.create_task(run_drill(base, opts, admin_url=ADMIN_URL, redis_url=redis_url))
    try:
        first = await poll(cport, lambda s: total(s, "collector_messages_received_total") > 0, 60)
        second = await poll(
            cport,
            lambda s: (
                total(s, "collector_messages_received_total")
                > total(first, "collector_messages_received_total")
                and total(s, "collector_reconnect_total") >= 1
            ),
            60,
        )
        stored = await poll(pport, lambda s: total(s, "persist_rows_inserted_total") > 0, 60)
        stored_later = await poll(
            pport,
            lambda s: (
                total(s, "persist_rows_inserted_total")
                > total(stored, "persist_rows_inserted_total")
                and total(s, "tickguard_gaps") > 0  # the flap's gaps reached the ledger
            ),
            60,
        )
    finally:
        report = await drill
    symbols = {dict(labels)["symbol"] for (n, labels) in second if n.startswith("collector_mes")}
    assert len(symbols) == 4  # one series per subscribed symbol
    assert ("collector_connection_status", (("broker", "kis"), ("key", "drill0"))) in second
    errors = {
        dict(lb)["error_type"]: v for (n, lb), v in second.items() if n == "collector_error_total"
    }
    assert errors["drop"] >= 1  # the flap's drops are counted as errors
    assert total(second, "collector_spool_bytes") >= 0
    assert total(second, "process_resident_memory_bytes") > 10 * 2**20
    assert total(stored_later, "persist_commits_total") > 0
    for samples in (second, stored_later):
        assert {n for n, _ in samples} <= EXPORTED | {"python_info"}, {
            n for n, _ in samples
        } - EXPORTED
    assert report["trades_lost_after_receipt"] == 0

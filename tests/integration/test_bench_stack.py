"""``tickguard bench stack`` / ``bench soak`` as processes: tiny runs, shape and real rows.

Speed is a figure the commands report, not a test: here a low rate for a few seconds must
store rows in PostgreSQL, time trades with ordered positive latencies, and sample the RSS
of the simulator, the collector and persist. Both commands use private servers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TICKGUARD = str(Path(sys.executable).parent / "tickguard")


def _run(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [TICKGUARD, "bench", *args, "--json"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.slow
def test_bench_stack_stores_and_times_messages() -> None:
    out = _run("stack", "--rates", "400", "--step-s", "3", "--symbols", "20")
    for key in ("sustained_msgs_per_s", "p50_latency_s", "p99_latency_s", "peak_rss_mb"):
        assert key in out
    assert set(out["peak_rss_mb_by_process"]) == {"sim", "collector", "persist"}
    assert out["peak_rss_mb"] == max(out["peak_rss_mb_by_process"].values()) > 0
    (step,) = out["steps"]
    assert step["rows_stored"] > 0 and out["rows_stored"] == step["rows_stored"]
    assert step["stored_msgs_per_s"] > 0 and step["offered_msgs_per_s"] > 0
    assert step["trades_timed"] > 0
    cores = step["cpu_cores"]
    assert {"sim", "collector", "persist", "postgres", "redis", "box"} <= set(cores), cores
    assert all(cores[k] > 0 for k in ("sim", "collector", "persist", "postgres")), cores
    assert cores["box"] >= max(v for k, v in cores.items() if k != "box")
    assert 0 < step["p50_latency_s"] <= step["p99_latency_s"] <= step["max_latency_s"]
    if step["sustained"]:
        assert out["sustained_msgs_per_s"] == step["stored_msgs_per_s"]
        assert out["p50_latency_s"] == step["p50_latency_s"]


@pytest.mark.slow
def test_bench_soak_samples_every_process() -> None:
    out = _run("soak", "--seconds", "6", "--rate", "300", "--symbols", "20",
               "--sample-s", "0.5", "--warmup-min", "0.02")  # fmt: skip
    counts = out["samples_per_process"]
    assert set(counts) == {"sim", "collector", "persist"}
    assert all(n >= 3 for n in counts.values()), counts
    assert set(out["drift"]) == {"sim", "collector", "persist"}
    for d in out["drift"].values():
        assert d["post_warmup_median_mb"] > 0 and d["last_window_median_mb"] > 0
    assert out["stored_msgs_per_s"] > 0

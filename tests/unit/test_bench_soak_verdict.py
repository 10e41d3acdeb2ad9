"""The soak's verdict judges tickguard's own processes; the simulator's drift is reported."""

from __future__ import annotations

from tickguard.bench.soak import JUDGED, Drift, SoakPlan, SoakResult


def _drift(d: float) -> Drift:
    return Drift(samples=60, post_warmup_median_mb=100.0, last_window_median_mb=100.0 * (1 + d),
                 peak_mb=100.0 * (1 + d), drift=d)  # fmt: skip


def _result(**drifts: float) -> SoakResult:
    result = SoakResult(SoakPlan(), seconds=1800.0, offered_msgs_per_s=12_000.0,
                        stored_msgs_per_s=12_000.0, p99_latency_s=0.2)  # fmt: skip
    result.drift = {name: _drift(d) for name, d in drifts.items()}
    return result


def test_simulator_drift_is_reported_not_judged() -> None:
    result = _result(collector=0.025, persist=0.011, sim=0.108)
    assert JUDGED == ("collector", "persist")
    assert result.max_drift == 0.025 and result.ok
    out = result.as_json()
    assert out["drift"]["sim"]["drift"] == 0.108 and out["judged"] == ["collector", "persist"]


def test_a_drifting_collector_or_persist_fails_the_soak() -> None:
    assert not _result(collector=0.06, persist=0.0, sim=0.0).ok
    assert not _result(collector=0.0, persist=-0.07, sim=0.0).ok
    assert _result(collector=0.049, persist=-0.049).ok

"""The kill-collector drill at a small size on the shared test Prefect server: the
collector, a flow run of its deployment in a process worker, is SIGKILLed mid-session and
Prefect's automation restarts it; after the backfill nothing is missing or duplicated,
nothing the collector had read is lost (its receive journal), the kill is covered by a gap
row of every subscription, and the simulator saw no session conflict. The restart budget is
raised: other tests' failures of kis-collector on the shared server count against it."""

from __future__ import annotations

import pytest

from fakes.prefect_server import PG_ADMIN_URL, PrefectApi

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def test_kill_collector_prefect_restarts_it_and_nothing_is_lost(
    prefect_api: PrefectApi, redis_url: str
) -> None:
    from tickguard.drill.kill import run_kill_drill
    from tickguard.drill.runner import DrillOptions
    from tickguard.drill.scenarios import Scenario
    from tickguard.models import Broker
    from tickguard.settings import Settings

    scenario = Scenario(
        "kill-collector", "SIGKILL the collector once; Prefect restarts it",
        extra={"kills": 1, "kill_after_s": 8, "session_s": 100, "restart_room_s": 45,
               "restart_delay_base_s": 1, "restart_max": 20, "prefect_api": prefect_api.url},
    )  # fmt: skip
    opts = DrillOptions(scenario, broker=Broker.KIS)
    report = await run_kill_drill(Settings(), opts, admin_url=PG_ADMIN_URL, redis_url=redis_url)
    print(
        f"\nkill → Running {report['restart_s_max']} s, → data stored {report['resume_s_max']} s;"
        f" read {report['trades_read']}, sent unread {report['trades_sent_unread']},"
        f" filled {report['trades_filled']}, wall {report['wall_s']} s"
    )
    assert report["kills"] == 1 and report["target_runs"] == 2, report
    assert report["restart_s_max"] is not None and report["resume_s_max"] is not None
    assert report["trades_missing_final"] == 0, report
    assert report["trades_duplicated"] == 0, report
    assert report["trades_lost_after_receipt"] == 0, report
    assert report["gaps_injected"] == report["gaps_detected"] == 1, report
    assert report["false_alarms"] == 0, report
    assert report["session_conflicts"] == 0, report
    assert report["persist_caught_up"] is True

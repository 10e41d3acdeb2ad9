"""Every prefect.yaml entrypoint loads with Prefect's own loader; the file says what it must.

The incident's collector crash-looped on an ImportError at the open; here that fails CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in PREFECT_YAML["deployments"]}


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_entrypoint_loads_with_prefects_loader(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.flows import Flow, load_flow_from_entrypoint

    monkeypatch.chdir(ROOT)
    # use_placeholder_flow=False: by default Prefect falls back to an AST placeholder when
    # the module raises, which would hide exactly the ImportError this test exists for.
    loaded = load_flow_from_entrypoint(DEPLOYMENTS[name]["entrypoint"], use_placeholder_flow=False)
    assert isinstance(loaded, Flow)
    assert loaded.name == name
    assert loaded.isasync, "long-running flows are async (a sync flow costs ~1 s per run)"


def test_an_import_error_in_an_entrypoint_fails(tmp_path: Path) -> None:
    from prefect.exceptions import ScriptError
    from prefect.flows import load_flow_from_entrypoint

    broken = tmp_path / "broken.py"
    broken.write_text(
        "import httpx_not_installed_here\n"
        "from prefect import flow\n\n"
        "@flow\nasync def collect() -> None:\n    pass\n"
    )
    # Prefect's default hides it behind a placeholder flow (why the test above opts out) ...
    assert load_flow_from_entrypoint(f"{broken}:collect").name == "collect"
    # ... and the strict load surfaces it.
    with pytest.raises(ScriptError) as info:
        load_flow_from_entrypoint(f"{broken}:collect", use_placeholder_flow=False)
    assert isinstance(info.value.user_exc, ImportError)


def test_expected_deployments_and_entrypoint_files_are_thin() -> None:
    assert {"kis-collector", "kiwoom-collector", "persist"} <= set(DEPLOYMENTS)
    for item in DEPLOYMENTS.values():
        path = ROOT / item["entrypoint"].split(":")[0]
        imports = [ln for ln in path.read_text().splitlines() if ln.startswith(("import", "from"))]
        assert imports and all(ln.startswith("from tickguard") for ln in imports), path


def test_schedules_are_seoul_with_slugs_and_collectors_limited_per_shard() -> None:
    slugs = []
    for item in DEPLOYMENTS.values():
        assert item["work_pool"]["name"] == "{{ $TICKGUARD_WORK_POOL }}"
        for sched in item["schedules"]:
            assert sched["timezone"] == "Asia/Seoul" and sched["slug"]
            slugs.append(sched["slug"])
    assert len(slugs) == len(set(slugs))
    for name in ("kis-collector", "kiwoom-collector"):
        item = DEPLOYMENTS[name]
        assert item["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
        assert {"tickguard-collector", "tickguard-supervised"} <= set(item["tags"])
        assert set(item["parameters"]) == {"symbols", "shard"}
        assert item["schedules"][0]["cron"] == "20 8 * * 1-5"


def test_no_secret_in_prefect_yaml() -> None:
    text = (ROOT / "prefect.yaml").read_text().lower()
    for word in ("app_key", "app_secret", "token", "webhook", "password", "postgresql://"):
        assert word not in text


def test_automation_definitions_validate() -> None:
    from tickguard.orchestration.automations import load_definitions

    found = {a.name: a for a in load_definitions(ROOT / "deployments" / "automations")}
    assert set(found) == {
        "tickguard-supervised-restart",
        "tickguard-supervised-heartbeat",
        "tickguard-collector-stalled",
    }
    restart = found["tickguard-supervised-restart"]
    assert restart.actions[0].type == "run-deployment"
    assert restart.actions[0].source == "inferred"
    assert found["tickguard-supervised-heartbeat"].trigger.posture == "Proactive"
    assert "tickguard.collector.liveness" in found["tickguard-collector-stalled"].trigger.after


def test_heartbeat_window_must_cover_two_heartbeats() -> None:
    from tickguard.errors import SettingsError
    from tickguard.orchestration.automations import check_heartbeat_window, load_definitions

    found = load_definitions(ROOT / "deployments" / "automations")
    check_heartbeat_window(found, 30)
    with pytest.raises(SettingsError, match="shorter than two heartbeats"):
        check_heartbeat_window(found, 60)


def test_automations_cli_check_and_usage_errors(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tickguard.cli import app

    runner = CliRunner()
    ok = runner.invoke(
        app, ["automations", "check", "--dir", str(ROOT / "deployments/automations")]
    )
    assert ok.exit_code == 0 and "3 automations valid" in ok.output
    missing = runner.invoke(app, ["automations", "check", "--dir", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "Usage:" in missing.output
    (tmp_path / "bad.yaml").write_text("name: tickguard-bad\ntrigger: {type: nonsense}\n")
    bad = runner.invoke(app, ["automations", "check", "--dir", str(tmp_path)])
    assert bad.exit_code == 1 and "bad.yaml" in bad.output

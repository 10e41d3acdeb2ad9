"""deployments/: the alert rules pass promtool (syntax and behaviour), the dashboard and the
rules query only metrics tickguard exports, the compose file is valid Compose, and the
Docker build installs from the lock file and refuses an image whose entrypoints do not load."""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tickguard.metrics import EXPORTED
from tickguard.settings import MetricsSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deployments"
PROM = DEPLOY / "prometheus"
RECORDED = {"tickguard:kst_session"}
OURS = re.compile(r"\b((?:collector|persist|process|tickguard)_[a-z_]+|up)\b(?!\s*\()")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool missing: apt-get install -y prometheus (.ci/run does it)")
    return found


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "tickguard.json").read_text())
    return [t["expr"] for panel in dash["panels"] for t in panel["targets"]]


def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    tool = promtool()
    check = subprocess.run([tool, "check", "rules", str(PROM / "alerts.yml")],
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    behaviour = subprocess.run([tool, "test", "rules", str(PROM / "alerts_test.yml")],
                               capture_output=True, text=True, cwd=PROM)  # fmt: skip
    assert behaviour.returncode == 0, behaviour.stdout + behaviour.stderr


def test_promtool_accepts_the_scrape_config(tmp_path: Path) -> None:
    config = (PROM / "prometheus.yml").read_text()
    shutil.copy(PROM / "alerts.yml", tmp_path / "alerts.yml")
    local = tmp_path / "prometheus.yml"
    local.write_text(config.replace("/etc/prometheus/alerts.yml", str(tmp_path / "alerts.yml")))
    done = subprocess.run([promtool(), "check", "config", str(local)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_query_names_only_exported_metrics(source: str) -> None:
    alerts = [r["expr"] for r in rules() if "alert" in r]
    exprs = alerts if source == "alerts" else dashboard_exprs()
    assert exprs
    for expr in exprs:
        names = set(OURS.findall(expr))
        names |= {n for n in RECORDED if n in expr}
        assert names, f"query names no tickguard metric: {expr}"
        unknown = names - EXPORTED - RECORDED
        assert not unknown, f"{unknown} in {expr!r} are not exported by tickguard"


def test_the_incident_metrics_are_on_the_dashboard_and_in_the_rules() -> None:
    text = " ".join(dashboard_exprs())
    for name in ("collector_connection_status", "collector_messages_received_total",
                 "collector_reconnect_total", "collector_error_total",
                 "collector_exchange_lag_seconds", "collector_queue_depth",
                 "collector_spool_bytes", "collector_quarantined_frames_total",
                 "persist_rows_inserted_total", "persist_lag_entries", "collector_gaps_open",
                 "process_resident_memory_bytes"):  # fmt: skip
        assert name in text, name
    assert "CollectorDown" in {r.get("alert") for r in rules()}


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text().lower()
    for rule in rules():
        if "alert" not in rule:
            continue
        anchor = rule["annotations"]["runbook"].partition("#")[2]
        assert anchor == rule["alert"].lower()
        assert f"### {rule['alert'].lower()}" in runbook, rule["alert"]


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def test_compose_is_valid_against_the_compose_specification() -> None:
    # The Compose Specification's JSON schema, as vendored by check-jsonschema (dev dep).
    files = importlib.resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
    schema = json.loads((files / "compose-spec.json").read_text())
    jsonschema.validate(compose(), schema)
    broken = {**compose(), "services": {"x": {"image": 3, "restart": ["no"]}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_compose_runs_the_whole_stack_and_prometheus_scrapes_its_ports() -> None:
    services = compose()["services"]
    for name in ("timescaledb", "redis", "prefect-server", "worker", "collectors", "persist",
                 "prometheus", "grafana"):  # fmt: skip
        assert name in services, name
    assert "timescale/timescaledb" in services["timescaledb"]["image"]
    for path in ("postgres/init-prefect-db.sql",):
        assert (DEPLOY / path).is_file()
    scrape = yaml.safe_load((PROM / "prometheus.yml").read_text())["scrape_configs"]
    targets = {t for job in scrape for sc in job["static_configs"] for t in sc["targets"]}
    m = MetricsSettings()
    assert targets == {f"collectors:{m.collector_port}", f"collectors:{m.kiwoom_collector_port}",
                       f"persist:{m.persist_port}"}  # fmt: skip
    text = (DEPLOY / "compose.yaml").read_text()
    assert "TICKGUARD_METRICS__HOST: 0.0.0.0" in text  # loopback would hide them from Prometheus
    assert not re.search(r"(PASSWORD|TOKEN|SECRET|APP_KEY)\w*:\s+[^$\s{]", text)


def test_dockerfile_builds_from_the_lock_and_checks_its_entrypoints() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "COPY pyproject.toml uv.lock" in text
    assert text.count("uv sync --frozen --no-dev") == 2
    assert "pip install" not in text
    assert "python -m tickguard.preflight.probe project /app" in text
    for folder in ("src", "collectors", "flows", "expectations"):
        assert f"COPY {folder} ./{folder}" in text


def test_the_build_time_entrypoint_check_passes_here_and_fails_a_broken_project(
    tmp_path: Path,
) -> None:
    cmd = [sys.executable, "-m", "tickguard.preflight.probe", "project"]
    ok = subprocess.run([*cmd, str(ROOT)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "flow.py").write_text("import httpx_missing_from_the_image\n")
    (tmp_path / "prefect.yaml").write_text("deployments:\n  - entrypoint: flow.py:run\n")
    bad = subprocess.run([*cmd, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "httpx_missing_from_the_image" in bad.stdout


def test_every_exported_metric_is_explained_in_the_runbook() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text()
    for name in EXPORTED:
        if name.startswith(("collector_", "persist_", "tickguard_")):
            assert name in runbook, name

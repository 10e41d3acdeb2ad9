"""Preflight's pure parts: verdicts, exit codes, clock skew, import names, declared deps."""

from __future__ import annotations

from email.utils import formatdate
from pathlib import Path

import pytest

from tickguard.models import Broker
from tickguard.preflight import code
from tickguard.preflight.brokers import clock_check
from tickguard.preflight.model import PreflightReport, Status, Verdict, failed, passed, warned
from tickguard.settings import Settings


def test_verdict_is_the_worst_status_and_maps_to_exit_codes() -> None:
    ok, warn, bad = passed("a", "1"), warned("b", "2", "do"), failed("c", "3", "fix")
    assert PreflightReport([ok], 0.1).verdict is Verdict.GO
    assert PreflightReport([ok, warn], 0.1).verdict is Verdict.DEGRADED
    assert PreflightReport([warn, bad, ok], 0.1).verdict is Verdict.NO_GO
    assert [v.exit_code for v in Verdict] == [0, 1, 2]
    doc = PreflightReport([ok, bad], 1.23456).as_dict()
    assert doc["verdict"] == "no-go" and doc["elapsed_s"] == 1.235
    assert doc["checks"][1] == {"name": "c", "status": "fail", "value": "3", "hint": "fix"}


@pytest.mark.parametrize(("offset", "status"), [(0, Status.PASS), (-4, Status.WARN),
                                                 (4, Status.WARN), (30, Status.FAIL)])  # fmt: skip
def test_clock_skew_against_the_date_header(offset: float, status: Status) -> None:
    now = 1_790_000_000.0
    header = formatdate(now - offset, usegmt=True)
    result = clock_check(Settings(), Broker.KIS, header, now + 0.5)
    assert result.status is status, result
    if status is not Status.PASS:
        assert "NTP" in result.hint


def test_clock_without_date_header_is_a_warning() -> None:
    assert clock_check(Settings(), Broker.KIS, None, 0.0).status is Status.WARN


def test_import_names_follow_the_distribution() -> None:
    top = {"psycopg": ["psycopg"], "slack_sdk": ["slack-sdk"], "slack": ["slack-sdk"],
           "yaml": ["PyYAML"], "_cffi_backend": ["cffi"]}  # fmt: skip
    assert code.import_name("psycopg", top) == "psycopg"
    assert code.import_name("slack-sdk", top) == "slack_sdk"
    assert code.import_name("pyyaml", top) == "yaml"
    assert code.import_name("cffi", top) is None


def test_declared_requirements_and_symbols_come_from_the_project(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname="x"\nversion="0"\ndependencies=["httpx>=0.28", '
        '"psycopg[binary]>=3.2", "tomli; python_version<\'3.0\'"]\n'
    )
    (tmp_path / "prefect.yaml").write_text(
        "deployments:\n - name: a\n   entrypoint: a.py:f\n   parameters: {symbols: ['1', '2']}\n"
        " - name: b\n   entrypoint: b.py:g\n   parameters: {symbols: ['2', '3']}\n"
    )
    assert [r.name for r in code.declared_requirements(tmp_path)] == ["httpx", "psycopg"]
    assert code.deployed_symbols(tmp_path) == ["1", "2", "3"]
    assert code.entrypoints(tmp_path) == ["a.py:f", "b.py:g"]
    assert code.check_dependencies(tmp_path)[0].status is Status.PASS


def test_a_container_memory_limit_below_the_need_is_a_no_go(tmp_path: Path) -> None:
    from tickguard.preflight.host import check_memory

    limit = tmp_path / "memory.max"
    limit.write_text(f"{512 * 2**20}\n")
    result = check_memory(Settings(), limit)
    assert result.status is Status.FAIL
    assert "0.5 GiB container limit" in result.value and "OOM" in result.hint
    limit.write_text("max\n")
    assert "container limit" not in check_memory(Settings(), limit).value


async def test_an_entrypoint_that_kills_its_interpreter_fails_one_check(tmp_path: Path) -> None:
    from tickguard.preflight.runner import _bounded

    (tmp_path / "boom.py").write_text("import os\nos._exit(3)\n")
    (tmp_path / "prefect.yaml").write_text("deployments:\n  - entrypoint: boom.py:f\n")
    (result,) = await _bounded("entrypoints", code.check_entrypoints(tmp_path, 60), 60)
    assert result.status is Status.FAIL and "probe exited 3" in result.value

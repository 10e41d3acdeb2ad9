"""``tickguard stack up|down|status`` through the CLI, against real embedded servers."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickguard.cli import app

pytestmark = pytest.mark.slow


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment of a private embedded stack; `stack down` runs afterwards regardless."""
    pg_port, valkey_port = free_ports(2)
    for name in ("TICKGUARD_DATABASE_URL", "TICKGUARD_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "TICKGUARD_DATA_DIR": str(tmp_path / "tg"),
        "TICKGUARD_STACK__PG_PORT": str(pg_port),
        "TICKGUARD_STACK__VALKEY_PORT": str(valkey_port),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    CliRunner().invoke(app, ["stack", "down"])
    shutil.rmtree(env["TICKGUARD_DATA_DIR"], ignore_errors=True)  # a cluster is ~40 MB


def status_json(runner: CliRunner) -> dict[str, dict[str, object]]:
    result = runner.invoke(app, ["stack", "status", "--json"])
    assert result.exit_code == 0, result.output
    parsed: dict[str, dict[str, object]] = json.loads(result.stdout)
    return parsed


def test_up_status_down_through_the_cli(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    assert [s["running"] for s in status_json(runner).values()] == [False, False]

    up = runner.invoke(app, ["stack", "up"])
    assert up.exit_code == 0, up.output
    assert "postgres" in up.stdout and "valkey" in up.stdout
    first = status_json(runner)
    assert first["postgres"]["running"] and first["valkey"]["running"]
    assert first["postgres"]["kind"] == "embedded"
    assert first["postgres"]["data_path"] == str(Path(cli_env["TICKGUARD_DATA_DIR"]) / "postgres")

    again = runner.invoke(app, ["stack", "up"])  # idempotent: same servers
    assert again.exit_code == 0, again.output
    assert status_json(runner) == first

    down = runner.invoke(app, ["stack", "down"])
    assert down.exit_code == 0, down.output
    after = status_json(runner)
    assert not after["postgres"]["running"] and not after["valkey"]["running"]
    assert (Path(cli_env["TICKGUARD_DATA_DIR"]) / "postgres" / "data" / "PG_VERSION").exists()


def test_taken_port_exits_1_with_the_setting_to_change(cli_env: dict[str, str]) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", int(cli_env["TICKGUARD_STACK__PG_PORT"])))
        stranger.listen()
        result = CliRunner().invoke(app, ["stack", "up"])
    assert result.exit_code == 1
    assert "TICKGUARD_STACK__PG_PORT" in result.stderr
    assert "Traceback" not in result.output


def test_bad_setting_exits_1_naming_the_variable(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKGUARD_STACK__PG_PORT", "not-a-port")
    result = CliRunner().invoke(app, ["stack", "status"])
    assert result.exit_code == 1
    assert "TICKGUARD_STACK__PG_PORT" in result.stderr


def test_unknown_subcommand_prints_usage() -> None:
    result = CliRunner().invoke(app, ["stack", "sideways"])
    assert result.exit_code == 2
    assert "Usage" in result.output

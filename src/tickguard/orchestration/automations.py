"""Automation definitions as files, applied by name: ``tickguard automations apply``.

``deployments/automations/*.yaml`` (or ``.json``) hold one automation each, in Prefect's
own schema (``AutomationCore``: name, description, trigger, actions). Every file must
validate — an invalid one stops the command with its path, nothing is half-applied — and
names must be unique and start with ``tickguard-``. Apply is idempotent: an automation with
the same name is updated in place (duplicates by name are removed), a missing one is
created, one named ``tickguard-*`` that no file defines any more is deleted (renames leave
no stale twin behind), and running it twice changes nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from tickguard.errors import SettingsError

log = logging.getLogger(__name__)

SUFFIXES = (".yaml", ".yml", ".json")
PREFIX = "tickguard-"


@dataclass(frozen=True, slots=True)
class Applied:
    name: str
    action: str
    """created | updated | unchanged | deleted"""


def load_definitions(directory: Path) -> list[Any]:
    """Every automation under ``directory``, validated (SettingsError names a bad file)."""
    from prefect.events.schemas.automations import AutomationCore
    from pydantic import ValidationError

    files = sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES)
    if not files:
        raise SettingsError(f"no automation definitions in {directory}")
    found: list[Any] = []
    for path in files:
        raw = path.read_text("utf-8")
        data = json.loads(raw) if path.suffix == ".json" else yaml.safe_load(raw)
        try:
            found.append(AutomationCore.model_validate(data))
        except ValidationError as exc:
            raise SettingsError(f"{path}: invalid automation: {exc}") from None
    names = [a.name for a in found]
    if not all(n.startswith(PREFIX) for n in names):
        raise SettingsError(f"automation names must start with {PREFIX!r}: {names}")
    if len(set(names)) != len(names):
        raise SettingsError(f"automation names must be unique in {directory}: {names}")
    return found


def check_heartbeat_window(definitions: list[Any], heartbeat_s: int) -> None:
    """A proactive trigger on heartbeats must wait for at least two missed beats, or it
    marks healthy runs Crashed (the files say 90 s for the 30 s default)."""
    for item in definitions:
        trigger = item.trigger
        after: set[str] = getattr(trigger, "after", None) or set()
        if "prefect.flow-run.heartbeat" in after:
            within = trigger.within.total_seconds()
            if within < 2 * heartbeat_s:
                raise SettingsError(
                    f"{item.name}: within={within:.0f} s is shorter than two heartbeats "
                    f"(TICKGUARD_ORCHESTRATION__HEARTBEAT_S={heartbeat_s}); raise it in the file"
                )


def _comparable(automation: Any) -> Any:
    fields = {"name", "description", "enabled", "trigger", "actions", "actions_on_trigger",
              "actions_on_resolve"}  # fmt: skip
    return _normalise(automation.model_dump(mode="json", include=fields))


def _normalise(value: Any) -> Any:
    """Sets (``expect``, ``after``, ``for_each``) dump as lists in iteration order, which
    differs between equal sets: sort lists of strings so equal automations compare equal."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normalise(v) for v in value]
        return sorted(items) if all(isinstance(v, str) for v in items) else items
    return value


async def apply(client: Any, definitions: list[Any]) -> list[Applied]:
    """Create or update each definition by name."""
    results: list[Applied] = []
    for wanted in definitions:
        existing = await client.read_automations_by_name(wanted.name)
        if not existing:
            await client.create_automation(wanted)
            results.append(Applied(wanted.name, "created"))
            continue
        keep, *extra = existing
        for duplicate in extra:
            await client.delete_automation(duplicate.id)
        if _comparable(keep) == _comparable(wanted) and not extra:
            results.append(Applied(wanted.name, "unchanged"))
        else:
            await client.update_automation(keep.id, wanted)
            results.append(Applied(wanted.name, "updated"))
    wanted_names = {d.name for d in definitions}
    for stale in await client.read_automations():
        if stale.name.startswith(PREFIX) and stale.name not in wanted_names:
            await client.delete_automation(stale.id)
            results.append(Applied(stale.name, "deleted"))
    for item in results:
        log.info("automation %r %s", item.name, item.action)
    return results


async def apply_directory(directory: Path, heartbeat_s: int = 30) -> list[Applied]:
    """Load, check and apply against the configured Prefect API (PREFECT_API_URL)."""
    from prefect.client.orchestration import get_client

    definitions = load_definitions(directory)
    check_heartbeat_window(definitions, heartbeat_s)
    async with get_client() as client:
        return await apply(client, definitions)

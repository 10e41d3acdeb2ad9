"""The GX suites of ``expectations/``: read as JSON, built into GX objects with a count check.

GX skips an expectation it cannot build (an unknown type, a bad kwarg) with only a log line
and validates the rest: a typo would silently switch a check off. Here the number of
expectations GX built must equal the number in the file, or loading fails loudly.

The JSON is read without GX (cheap: CI and the CLI list suites without the 3–4 s import);
only :func:`build_suite` needs GX, and imports it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tickguard.calendar import Phase
from tickguard.errors import TickguardError

if TYPE_CHECKING:
    from great_expectations.core.expectation_suite import ExpectationSuite

TABLES = ("trades", "book_snapshots")


class SuiteError(TickguardError):
    """A suite file is malformed, or GX refused some of its expectations."""


@dataclass(frozen=True, slots=True)
class SuiteSpec:
    name: str
    table: str
    path: Path
    expectations: tuple[dict[str, Any], ...]

    def for_phase(self, phase: Phase) -> tuple[dict[str, Any], ...]:
        """Expectations that apply in ``phase`` (meta.tickguard.phases; none listed = all)."""
        out = []
        for item in self.expectations:
            phases = item.get("meta", {}).get("tickguard", {}).get("phases")
            if phases is None or phase.value in phases:
                out.append(item)
        return tuple(out)


def default_dir() -> Path:
    """``expectations/`` of the project (TICKGUARD_PROJECT_DIR, else the source tree)."""
    project = os.environ.get("TICKGUARD_PROJECT_DIR")
    if project:
        return Path(project) / "expectations"
    return Path(__file__).resolve().parents[3] / "expectations"


def read_spec(path: Path) -> SuiteSpec:
    try:
        data = json.loads(path.read_text("utf-8"))
        table = data["meta"]["tickguard"]["table"]
        items = tuple(data["expectations"])
        name = str(data["name"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SuiteError(
            f"suite {path.name}: cannot read it ({type(exc).__name__}: {exc})"
        ) from exc
    if table not in TABLES:
        raise SuiteError(f"suite {path.name}: table must be one of {TABLES}, not {table!r}")
    if not items:
        raise SuiteError(f"suite {path.name}: no expectations")
    return SuiteSpec(name=name, table=table, path=path, expectations=items)


def load_specs(directory: Path | None = None) -> list[SuiteSpec]:
    """Every ``*.json`` suite of the directory, sorted by name; at least one."""
    directory = directory or default_dir()
    specs = [read_spec(p) for p in sorted(directory.glob("*.json"))]
    if not specs:
        raise SuiteError(f"no GX suites (*.json) in {directory}")
    return specs


def build_suite(spec: SuiteSpec, items: tuple[dict[str, Any], ...]) -> ExpectationSuite:
    """A GX suite of ``items``; raises when GX built fewer than it was given."""
    from great_expectations.core.expectation_suite import ExpectationSuite

    suite = ExpectationSuite(name=spec.name, expectations=[dict(item) for item in items])
    if len(suite.expectations) != len(items):
        raise SuiteError(
            f"suite {spec.name}: GX built {len(suite.expectations)} of {len(items)}"
            " expectations (it skips invalid ones with only a log line)"
        )
    return suite

"""Does the code this host would run import? Entrypoints and declared dependencies.

The incident began with a collector crash-looping on an ImportError and a recovery worker
whose image lacked ``httpx``. Both are checked here, each in a child interpreter
(:mod:`tickguard.preflight.probe`) so a broken import fails a check, not the preflight.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
import tomllib
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from packaging.requirements import InvalidRequirement, Requirement

from tickguard.preflight.model import CheckResult, failed, passed

PROBE = "tickguard.preflight.probe"
PROJECT = "tickguard"


def entrypoints(project_dir: Path) -> list[str]:
    """Every deployment entrypoint of ``prefect.yaml`` (``path.py:function``)."""
    doc: Any = yaml.safe_load((project_dir / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = doc.get("deployments") or [] if isinstance(doc, dict) else []
    return [str(d["entrypoint"]) for d in deployments if isinstance(d, dict) and "entrypoint" in d]


def deployed_symbols(project_dir: Path) -> list[str]:
    """The symbols the deployments of ``prefect.yaml`` collect (union, in order)."""
    try:
        doc: Any = yaml.safe_load((project_dir / "prefect.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    seen: dict[str, None] = {}
    for dep in (doc.get("deployments") or []) if isinstance(doc, dict) else []:
        params = dep.get("parameters") if isinstance(dep, dict) else None
        for symbol in (params or {}).get("symbols") or []:
            seen.setdefault(str(symbol), None)
    return list(seen)


def declared_requirements(project_dir: Path) -> list[Requirement]:
    """``[project].dependencies`` of the project's pyproject.toml, else the installed metadata."""
    pyproject = project_dir / "pyproject.toml"
    if pyproject.is_file():
        raw = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        specs: list[str] = list(raw.get("project", {}).get("dependencies", []))
    else:
        specs = list(metadata.requires(PROJECT) or [])
    reqs = []
    for spec in specs:
        try:
            req = Requirement(spec)
        except InvalidRequirement:
            continue
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            reqs.append(req)
    return reqs


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def import_name(dist: str, top_level: Mapping[str, list[str]]) -> str | None:
    """The module a distribution is imported as: the one named like it, else its first."""
    wanted = _norm(dist)
    mods = sorted(m for m, ds in top_level.items() if wanted in {_norm(d) for d in ds})
    public = [m for m in mods if not m.startswith("_") and m not in {"tests", "test", "docs"}]
    for mod in public:
        if _norm(mod) == wanted:
            return mod
    return public[0] if public else None


async def probe(mode: str, *args: str, timeout_s: float) -> dict[str, str]:
    """Run the probe in a child interpreter; its JSON answer (raises on a crash or timeout)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        PROBE,
        mode,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    finally:
        if proc.returncode is None:  # timed out or cancelled: never leave a child behind
            proc.kill()
            await asyncio.shield(proc.wait())
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"probe exited {proc.returncode}: {tail[0][:200]}")
    result: dict[str, str] = json.loads(out.decode())
    return result


async def check_entrypoints(project_dir: Path, timeout_s: float) -> list[CheckResult]:
    """One check per prefect.yaml entrypoint: does its file import and define the flow?"""
    try:
        eps = entrypoints(project_dir)
    except (OSError, yaml.YAMLError) as exc:
        return [
            failed(
                "entrypoints",
                f"prefect.yaml unreadable: {type(exc).__name__}",
                f"fix {project_dir / 'prefect.yaml'} (it is what `tickguard deploy` reads)",
            )
        ]
    if not eps:
        return [
            failed(
                "entrypoints",
                "prefect.yaml declares no deployments",
                "restore the deployments of prefect.yaml",
            )
        ]
    answers = await probe("entrypoints", str(project_dir), *eps, timeout_s=timeout_s)
    return [_entrypoint_result(ep, answers.get(ep, "not probed")) for ep in eps]


def _entrypoint_result(ep: str, error: str) -> CheckResult:
    name = f"entrypoint {ep}"
    if not error:
        return passed(name, "imports")
    return failed(
        name,
        error,
        f"the deployment would crash-loop at start: fix the import in {ep.partition(':')[0]} "
        "(or add the missing dependency to pyproject.toml and rebuild), then `tickguard deploy`",
    )


def check_dependencies(project_dir: Path) -> list[CheckResult]:
    """Every declared dependency is installed at a version the project allows, and its
    module can be found on this interpreter's path.

    Finding, not importing: importing all of them (Great Expectations alone) takes longer
    than the whole preflight may; the entrypoint check imports what the flows really use.
    """
    reqs = declared_requirements(project_dir)
    top_level = metadata.packages_distributions()
    missing: list[str] = []
    for req in reqs:
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(f"{req.name} (not installed)")
            continue
        if not req.specifier.contains(version, prereleases=True):
            missing.append(f"{req.name} (installed {version}, wants {req.specifier})")
            continue
        module = import_name(req.name, top_level)
        if module is not None and importlib.util.find_spec(module) is None:
            missing.append(f"{req.name} (module {module} not found)")
    if missing:
        return [
            failed(
                "dependencies",
                f"{len(missing)} of {len(reqs)} missing: {', '.join(missing)}",
                "not the locked environment: rebuild the image / run `uv sync --frozen` "
                "(never pip-install by hand), then rerun preflight",
            )
        ]
    return [passed("dependencies", f"{len(reqs)} declared, all installed")]

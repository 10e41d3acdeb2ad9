"""Run in a child interpreter by :mod:`tickguard.preflight.code`: import things, print JSON.

Why a child: an entrypoint that fails to import (the incident's ImportError) or a native
extension that aborts must fail one check, not the preflight process. Usage::

    python -m tickguard.preflight.probe entrypoints PROJECT_DIR path.py:func ...
    python -m tickguard.preflight.probe modules name ...
    python -m tickguard.preflight.probe project PROJECT_DIR

Prints ``{"<item>": "" | "<ErrorClass>: <message>"}`` on stdout. ``project`` loads every
entrypoint of PROJECT_DIR/prefect.yaml and exits 1 when any fails: the Docker build runs it,
so an image missing a dependency (the incident's ``httpx``) is never built.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path


def load_entrypoint(project_dir: Path, entrypoint: str) -> None:
    """Import ``path.py:func`` the way a Prefect worker does, and require the function."""
    path, _, func = entrypoint.rpartition(":")
    file = project_dir / path
    if not path or not func:
        raise ValueError(f"entrypoint must be path.py:function, got {entrypoint!r}")
    spec = importlib.util.spec_from_file_location(f"__preflight_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no such file: {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, func, None)):
        raise AttributeError(f"{path} has no function {func!r}")


def _outcome(action: object) -> str:
    try:
        action()  # type: ignore[operator]
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return ""


def main(argv: list[str]) -> int:
    mode, *rest = argv
    results: dict[str, str] = {}
    if mode == "entrypoints":
        project_dir = Path(rest[0])
        sys.path.insert(0, str(project_dir))
        for ep in rest[1:]:
            results[ep] = _outcome(lambda ep=ep: load_entrypoint(project_dir, ep))
    elif mode == "project":
        from tickguard.preflight.code import entrypoints

        project_dir = Path(rest[0])
        sys.path.insert(0, str(project_dir))
        for ep in entrypoints(project_dir):
            results[ep] = _outcome(lambda ep=ep: load_entrypoint(project_dir, ep))
        print(json.dumps(results))
        return 1 if any(results.values()) or not results else 0
    elif mode == "modules":
        for name in rest:
            results[name] = _outcome(lambda name=name: importlib.import_module(name))
    else:
        print(f"unknown mode {mode!r}", file=sys.stderr)
        return 2
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Run the GX suites on one check window, in PostgreSQL, in an ephemeral GX context.

Why this shape (measured notes, ``docs/adr/0007-completeness-per-minute-shape.md``):

- one QueryAsset per (suite, window): SQL table assets have no minute batches, and row
  conditions on timestamps break with psycopg 3. The window query is a fixed string with
  literal bounds (symbols and broker are validated codes, timestamps ISO literals);
- every expectation is SQL (UnexpectedRowsExpectation): the database does the work and only
  the offending rows (a sample) come back;
- the context is ephemeral (nothing to keep in sync on disk) and GX is imported here only,
  on first use: ``import great_expectations`` costs ~3.6 s and ~270 MB.

Data Docs go to a directory of the caller's (under the data dir); their HTML loads CSS/JS
from public CDNs, so offline they open unstyled but complete.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickguard.calendar import Phase
from tickguard.quality.suites import SuiteSpec, build_suite
from tickguard.quality.window import CheckWindow
from tickguard.store.migrate import sqlalchemy_url

log = logging.getLogger(__name__)

_CODE = re.compile(r"^[A-Za-z0-9_]{1,16}$")
SITE = "tickguard"
SAMPLE_ROWS = 5


@dataclass(frozen=True, slots=True)
class Outcome:
    suite: str
    check: str
    description: str
    success: bool
    unexpected: int
    sample: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class GxReport:
    outcomes: list[Outcome]
    seconds: float
    """Wall time of the validation (context, assets, SQL), GX import excluded."""
    import_seconds: float
    docs_index: Path | None = None

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)


def window_query(table: str, window: CheckWindow, broker: str, symbols: Sequence[str]) -> str:
    """The QueryAsset's SELECT for one window (fixed string; inputs validated first)."""
    for code in (broker, *symbols):
        if not _CODE.match(code):
            raise ValueError(f"not a broker or symbol code: {code!r}")
    listed = ", ".join(f"'{s}'" for s in symbols)
    day = window.trading_day.isoformat()
    where = [
        f"trading_day = '{day}'",
        f"ts >= '{window.start.isoformat()}'",
        f"ts < '{window.end.isoformat()}'",
        f"symbol IN ({listed})",
    ]
    if table == "book_snapshots":
        where.append(f"broker = '{broker}'")
    return f"SELECT * FROM {table} WHERE " + " AND ".join(where)


def import_gx() -> tuple[Any, float]:
    """The GX module and the seconds its import took (0 when already imported)."""
    started = time.perf_counter()
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # INFO: import chatter
    import great_expectations as gx

    return gx, time.perf_counter() - started


def _remove_temp_site(config: Any) -> None:
    """An ephemeral context makes a temp dir for its default docs site on every call."""
    base = str((config or {}).get("store_backend", {}).get("base_directory", ""))
    if base and Path(base).parent == Path(tempfile.gettempdir()):
        shutil.rmtree(base, ignore_errors=True)


def _context(gx: Any, docs_dir: Path | None) -> Any:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    for site, config in dict(ctx.get_config().data_docs_sites or {}).items():
        ctx.delete_data_docs_site(site)
        _remove_temp_site(config)
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
        ctx.add_data_docs_site(
            site_name=SITE,
            site_config={
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return ctx


def _outcomes(spec: SuiteSpec, result: Any) -> list[Outcome]:
    out = []
    for res in result.results:
        cfg = res.expectation_config
        details = (res.result or {}).get("details", {})
        rows = details.get("unexpected_rows") or []
        observed = (res.result or {}).get("observed_value")
        count = int(observed) if isinstance(observed, int) else len(rows)
        out.append(
            Outcome(
                suite=spec.name,
                check=str((cfg.meta or {}).get("tickguard", {}).get("check", cfg.type)),
                description=str(cfg.description or cfg.type),
                success=bool(res.success),
                unexpected=count,
                sample=[{k: str(v) for k, v in dict(r).items()} for r in rows[:SAMPLE_ROWS]],
            )
        )
    return out


def validate_window(
    database_url: str,
    window: CheckWindow,
    broker: str,
    symbols: Sequence[str],
    phase: Phase,
    specs: Sequence[SuiteSpec],
    docs_dir: Path | None = None,
) -> GxReport:
    """Validate every suite on the window; Data Docs under ``docs_dir`` when given."""
    gx, import_s = import_gx()
    started = time.perf_counter()
    from great_expectations.checkpoint.actions import UpdateDataDocsAction, ValidationAction
    from great_expectations.checkpoint.checkpoint import Checkpoint

    ctx = _context(gx, docs_dir)
    source = ctx.data_sources.add_postgres(
        "tickguard", connection_string=sqlalchemy_url(database_url)
    )
    stamp = window.start.strftime("%Y%m%dT%H%MZ")
    definitions, by_suite = [], {}
    for spec in specs:
        items = spec.for_phase(phase)
        if not items:
            continue
        suite = ctx.suites.add(build_suite(spec, items))
        asset = source.add_query_asset(
            name=f"{spec.name}_{stamp}", query=window_query(spec.table, window, broker, symbols)
        )
        batch = asset.add_batch_definition_whole_table("window")
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"{spec.name}_{broker}_{stamp}", data=batch, suite=suite)
        )
        definitions.append(vd)
        by_suite[suite.name] = spec
    actions: list[ValidationAction] = (
        [UpdateDataDocsAction(name="docs", site_names=[SITE])] if docs_dir else []
    )
    checkpoint = ctx.checkpoints.add(
        Checkpoint(
            name=f"completeness_{broker}_{stamp}",
            validation_definitions=definitions,
            actions=actions,
            result_format={"result_format": "COMPLETE"},
        )
    )
    run = checkpoint.run()
    outcomes: list[Outcome] = []
    for result in run.run_results.values():
        outcomes += _outcomes(by_suite[result.suite_name], result)
    seconds = time.perf_counter() - started
    index = docs_dir / "index.html" if docs_dir is not None else None
    log.info("GX validated %s for %s in %.2f s", window.label(), broker, seconds)
    return GxReport(outcomes, seconds, import_s, index if index and index.exists() else None)

"""``tickguard bench …``: the commands that measure speed and memory targets.

Each command imports its workload inside its body, so ``tickguard --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tickguard.cli import app
from tickguard.models import Broker

bench_app = typer.Typer(help="Measure throughput and memory targets.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("parse")
def parse(
    broker: Annotated[Broker, typer.Option("--broker", help="Whose codec to measure.")],
    records: Annotated[
        int, typer.Option("--records", min=1, help="Trade records in the generated feed.")
    ] = 100_000,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Runs; the best counts.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated feed.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Trade records per CPU second of the codec, next to python-kis on the same frames."""
    from tickguard.bench.parse import FEEDS, run_parse_bench

    if broker not in FEEDS:
        raise typer.BadParameter(f"no parse bench for {broker.value} yet", param_hint="--broker")
    result = run_parse_bench(broker, records=records, repeat=repeat, seed=seed)
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    typer.echo(f"{result.broker} codec: {result.records_per_s:,.0f} records/s (CPU, one core)")
    if result.python_kis_records_per_s is None:
        typer.echo(f"python-kis: unavailable ({result.python_kis_unavailable})")
    else:
        typer.echo(f"python-kis: {result.python_kis_records_per_s:,.0f} records/s")
        typer.echo(f"ratio: {result.ratio:.2f}x")
    typer.echo(f"feed: {result.records} records in {result.frames} frames, best of {result.repeat}")


@bench_app.command("ingest")
def ingest(
    rows: Annotated[
        int, typer.Option("--rows", min=1, help="Synthetic trades to stream through persist.")
    ] = 1_000_000,
    read_count: Annotated[
        int | None,
        typer.Option("--read-count", min=1, help="Entries per XREADGROUP/transaction."),
    ] = None,
    writers: Annotated[
        int | None,
        typer.Option("--writers", min=1, max=16, help="Concurrent persist commits."),
    ] = None,
    rounds: Annotated[
        int, typer.Option("--rounds", min=1, help="Alternate persist and COPY this many times.")
    ] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Rows/s through sink → Redis → persist → PostgreSQL, next to a plain COPY of the same rows.

    Runs on a scratch database (tickguard_bench_<hex>, dropped afterwards) on the configured
    PostgreSQL server and a scratch stream on the configured Redis.
    """
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)  # before alembic is imported
    from tickguard.bench.ingest import run_ingest_bench
    from tickguard.cli.persist import service_urls
    from tickguard.errors import TickguardError
    from tickguard.settings import get_settings

    try:
        settings = get_settings()
        db_url, redis_url = service_urls(settings)
        result = run_ingest_bench(
            settings,
            database_url=db_url,
            redis_url=redis_url,
            n_rows=rows,
            read_count=read_count,
            writers=writers,
            rounds=rounds,
        )
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    typer.echo(
        f"rows: {result.rows:,} in {result.batches:,} batches "
        f"(read count {result.read_count}, {result.writers} writer(s))"
    )
    typer.echo(
        f"sink → Redis: {result.sink_rows_per_s:,.0f} rows/s, "
        f"{result.stream_bytes_per_row:.1f} stream bytes/row"
    )
    typer.echo(f"persist: {result.persist_rows_per_s:,.0f} rows/s")
    typer.echo(f"plain COPY: {result.copy_rows_per_s:,.0f} rows/s")
    typer.echo(f"ratio (persist / COPY): {result.ratio:.2f}")
    typer.echo(
        f"stored: {result.rows_stored:,}, duplicates: {result.duplicates}, "
        f"quarantined: {result.quarantined}"
    )


@bench_app.command("check")
def check(
    rows: Annotated[
        int, typer.Option("--rows", min=1, help="Synthetic trades in the table (target ≥ 50M).")
    ] = 50_000_000,
    symbols: Annotated[int, typer.Option("--symbols", min=1, help="Symbols checked.")] = 20,
    days: Annotated[int, typer.Option("--days", min=1, help="Trading days of rows.")] = 10,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the table (tickguard_bench_check) for reruns.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """One minute's completeness check (SQL + GX) on a large trades table; target < 1 s."""
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    from tickguard.bench.check import run_check_bench
    from tickguard.errors import TickguardError
    from tickguard.settings import get_settings
    from tickguard.stack import resolve_database_url

    try:
        url = resolve_database_url(get_settings())
        result = run_check_bench(url, rows=rows, symbols=symbols, days=days, keep=keep)
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    typer.echo(f"table: {result.rows:,} trades, {result.symbols} symbols, {result.days} days")
    if result.generated:
        typer.echo(f"generated in {result.generate_s:.1f} s")
    typer.echo(f"window {result.window}: SQL {result.sql_s:.3f} s, GX {result.gx_s:.3f} s")
    typer.echo(f"whole check: {result.check_s:.3f} s (GX import once: {result.gx_import_s:.2f} s)")
    typer.echo(f"gaps opened: {result.gaps_opened}, GX success: {result.gx_success}")


def _rates(value: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(r) for r in value.split(",") if r.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated msgs/s, got {value!r}") from None
    if not rates or any(r <= 0 for r in rates):
        raise typer.BadParameter(f"expected positive msgs/s, got {value!r}")
    return rates


@bench_app.command("stack")
def stack(
    rates: Annotated[
        str, typer.Option("--rates", help="Offered msgs/s of the steps, comma-separated.")
    ] = "10000,20000,30000,40000",
    step_s: Annotated[float, typer.Option("--step-s", min=1.0, help="Seconds per step.")] = 20.0,
    symbols: Annotated[
        int, typer.Option("--symbols", min=1, help="Symbols (20 per KIS app key/session).")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Market seed.")] = 1,
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="Collector keeps raw frames.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Highest sustained messages/s through simulator → collector → Redis → persist → PostgreSQL.

    A message is one market-data record as the broker sends it: one trade (H0STCNT0) or one
    order-book update (H0STASP0). Each part runs in its own process against a private Redis
    and a private PostgreSQL (commit timestamps on). Steps stop at the first rate not
    sustained (stored ≥ 95 % of offered, backlog not growing, p99 exchange → stored < 1 s).
    """
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    from tickguard.bench.stack import StackPlan, run_stack_bench
    from tickguard.errors import TickguardError

    plan = StackPlan(rates=_rates(rates), step_s=step_s, symbols=symbols, seed=seed,
                     record=record)  # fmt: skip
    try:
        result = run_stack_bench(plan)
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    typer.echo(f"{result.symbols} symbols over {result.sessions} KIS sessions; a message = one")
    typer.echo("trade or book record as the broker sends it")
    for s in result.steps:
        mark = "sustained" if s.sustained else "NOT sustained"
        typer.echo(
            f"  {s.target_msgs_per_s:>8,.0f}/s: offered {s.offered_msgs_per_s:>9,.0f}/s, "
            f"stored {s.stored_msgs_per_s:>9,.0f}/s, p50 {s.p50_latency_s:.3f} s, "
            f"p99 {s.p99_latency_s:.3f} s, backlog {s.backlog_start}→{s.backlog_end}, "
            f"load {s.load_avg_1m}: {mark}"
        )
        if s.cpu_cores:
            cores = ", ".join(f"{k} {v:.2f}" for k, v in s.cpu_cores.items())
            typer.echo(f"            cores used: {cores}")
    out = result.as_json()
    typer.echo(f"sustained: {out['sustained_msgs_per_s']:,.0f} msgs/s")
    rss = ", ".join(f"{k} {v:.0f} MiB" for k, v in result.peak_rss_mb_by_process.items())
    typer.echo(f"peak RSS: {rss}")


@bench_app.command("soak")
def soak(
    minutes: Annotated[float, typer.Option("--minutes", min=0.0, help="Run length.")] = 30.0,
    seconds: Annotated[
        float | None, typer.Option("--seconds", min=5.0, help="Run length in seconds (tests).")
    ] = None,
    rate: Annotated[float, typer.Option("--rate", min=1.0, help="Offered msgs/s.")] = 12_000.0,
    symbols: Annotated[int, typer.Option("--symbols", min=1, help="Symbols.")] = 2000,
    warmup_min: Annotated[
        float, typer.Option("--warmup-min", min=0.0, help="Excluded from the drift baseline.")
    ] = 5.0,
    sample_s: Annotated[float, typer.Option("--sample-s", min=0.1, help="RSS sampling.")] = 5.0,
    samples: Annotated[bool, typer.Option("--samples", help="Include every RSS sample.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The whole stack at whole-market load for a long run; RSS drift of each process.

    A message is one trade or book record as the broker sends it. Drift = (median RSS of the
    last warm-up-long window − median of the window right after the warm-up) / the latter;
    target < 5 % for the collector and persist (the simulator's is reported, not judged).
    """
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    from tickguard.bench.soak import SoakPlan, run_soak
    from tickguard.errors import TickguardError

    plan = SoakPlan(seconds=seconds if seconds is not None else minutes * 60, rate=rate,
                    symbols=symbols, warmup_s=warmup_min * 60, sample_s=sample_s)  # fmt: skip
    try:
        result = run_soak(plan)
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(result.as_json(with_samples=samples)))
        return
    typer.echo(
        f"{result.seconds:.0f} s at {result.offered_msgs_per_s:,.0f} msgs/s offered, "
        f"{result.stored_msgs_per_s:,.0f} stored; p50 {result.p50_latency_s:.3f} s, "
        f"p99 {result.p99_latency_s:.3f} s"
    )
    for name, d in result.drift.items():
        typer.echo(
            f"  {name}: {d.post_warmup_median_mb:.1f} → {d.last_window_median_mb:.1f} MiB "
            f"({d.drift:+.1%}), peak {d.peak_mb:.1f} MiB, {d.samples} samples"
        )
    typer.echo(f"{'ok' if result.ok else 'NOT ok'}: max drift of collector and persist "
               f"{result.max_drift:.1%} (target < 5 %)")  # fmt: skip
    typer.echo(f"load average {result.load_avg_start} → {result.load_avg_end}")

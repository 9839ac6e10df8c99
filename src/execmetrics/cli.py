"""The `execmetrics` command line."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Connection, Engine, func, select

from execmetrics import render
from execmetrics.config import get_settings
from execmetrics.demo import DemoFiles, DemoSpec, write_demo
from execmetrics.ingest.problems import IngestError
from execmetrics.ingest.service import IngestProgress, IngestResult, ingest_files
from execmetrics.metrics.cohorts import COHORT_FIELDS, compute_cohorts
from execmetrics.metrics.periods import (
    INTERVALS,
    PeriodError,
    parse_label,
    period_start,
    shift_periods,
    time_zone,
)
from execmetrics.metrics.queries import BreakdownError
from execmetrics.metrics.service import FIELDS, MetricsError, MetricsReport, compute_metrics
from execmetrics.settings_store import SettingError, all_settings, set_setting
from execmetrics.store.database import open_database
from execmetrics.store.tables import customers

app = typer.Typer(
    help="Executive SaaS metrics from your subscription data.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
settings_app = typer.Typer(help="Per-database settings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(settings_app, name="settings")

# Tables need room: when output goes to a file or pipe, lay it out 200 columns wide.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: EXECMETRICS_DATABASE_URL or ./var/).",
        show_default=False,
    ),
]
FormatOption = Annotated[str, typer.Option("--format", help="table, json or csv.")]
FromOption = Annotated[
    str | None, typer.Option("--from", help="First period, e.g. 2024-01 (default: 11 before --to).")
]
ToOption = Annotated[
    str | None, typer.Option("--to", help="Last period, e.g. 2025-12 (default: last complete).")
]
IntervalOption = Annotated[str, typer.Option("--interval", help="week, month, quarter or year.")]
TzOption = Annotated[str, typer.Option("--tz", help="IANA time zone of the periods.")]


def _engine(db: str | None) -> Engine:
    return open_database(db or get_settings().database_url)


def _fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _check_choice(value: str, choices: tuple[str, ...], parameter: str) -> None:
    if value not in choices:
        raise _fail(f"{parameter}: expected one of {', '.join(choices)}, got {value!r}")


def _range(
    first: str | None, last: str | None, interval: str, tz: str, periods: int = 12
) -> tuple[date, date]:
    """--from and --to, by default the last `periods` complete periods in the time zone."""
    today = datetime.now(time_zone(tz)).date()
    end = (
        parse_label(last, "to")
        if last
        else shift_periods(period_start(today, interval), interval, 1)
    )
    start = parse_label(first, "from") if first else shift_periods(end, interval, periods - 1)
    return start, end


def _customer_count(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(customers)).scalar_one())


def _print_rows(report: MetricsReport, columns: tuple[str, ...], output: str, title: str) -> None:
    if output == "json":
        sys.stdout.write(render.to_json(report) + "\n")
    elif output == "csv":
        sys.stdout.write(render.to_csv(report.rows))
    else:
        console.print(render.rows_table(report, list(columns), title))


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to ingest.")],
    db: DbOption = None,
    output: FormatOption = "table",
) -> None:
    """Ingest customers, subscription events, fx rates and marketing spend (all or nothing)."""
    _check_choice(output, ("table", "json"), "--format")
    engine = _engine(db)
    try:
        result = _ingest_with_progress(engine, paths, quiet=output == "json")
    except IngestError as error:
        if output == "json":
            payload = {
                "ok": False,
                "problems": [p.as_dict() for p in error.problems],
                "total_problems": error.total,
            }
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        else:
            _print_problems(error)
        raise typer.Exit(1) from None
    if output == "json":
        payload = {
            "ok": True,
            "ingestion_id": result.ingestion_id,
            "counts": {k: vars(v) for k, v in result.counts.items()},
            "ledger": vars(result.ledger),
            "seconds": round(result.seconds, 3),
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        _print_ingest_summary(result)


def _print_problems(error: IngestError) -> None:
    # Plain writes: a problem line must survive pipes intact (no wrapping, markup or emoji).
    sys.stderr.write(f"Nothing was ingested: {error.total} problem(s)\n{error.summary()}\n")


def _ingest_with_progress(engine: Engine, paths: list[Path], quiet: bool) -> IngestResult:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        disable=quiet,
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}
        current: list[TaskID] = []

        def on_file(kind: str, path: Path) -> None:
            current[:] = [bar.add_task(f"ingest {path.name}", total=None)]

        def on_rows(count: int) -> None:
            bar.advance(current[0], count)

        def on_ledger_start(total: int) -> None:
            if current:
                bar.update(current[0], total=bar.tasks[current[0]].completed)
            tasks["ledger"] = bar.add_task("rebuild MRR ledger", total=total)

        def on_ledger(count: int) -> None:
            bar.advance(tasks["ledger"], count)

        return ingest_files(
            engine, paths, progress=IngestProgress(on_file, on_rows, on_ledger_start, on_ledger)
        )


def _print_ingest_summary(result: IngestResult) -> None:
    for kind, counts in result.counts.items():
        if counts.received:
            console.print(f"{kind}: {counts.inserted:,} new, {counts.unchanged:,} unchanged")
    console.print(
        f"ledger: {result.ledger.customers:,} customers, {result.ledger.movements:,} movements "
        f"({result.seconds:.1f} s)"
    )


@app.command()
def metrics(
    first: FromOption = None,
    last: ToOption = None,
    interval: IntervalOption = "month",
    by: Annotated[
        str | None,
        typer.Option(
            "--by", help="segment, country, source, campaign, currency, plan, tier or attr.NAME"
        ),
    ] = None,
    tz: TzOption = "UTC",
    output: FormatOption = "table",
    db: DbOption = None,
) -> None:
    """MRR, ARR, movements, churn, retention, LTV and CAC per period."""
    _check_choice(output, render.FORMATS, "--format")
    _check_choice(interval, INTERVALS, "--interval")
    try:
        start, end = _range(first, last, interval, tz)
        engine = _engine(db)
        with engine.connect() as connection:
            report = compute_metrics(connection, start, end, interval, tz, by)
    except (PeriodError, BreakdownError, MetricsError) as error:
        raise _fail(str(error)) from None
    columns: tuple[str, ...] = (
        FIELDS
        if output != "table"
        else (
            "period",
            "group",
            "mrr_start",
            "new_mrr",
            "expansion_mrr",
            "reactivation_mrr",
            "contraction_mrr",
            "churned_mrr",
            "mrr_end",
            "customers_end",
            "customer_churn_rate",
            "nrr",
            "quick_ratio",
            "arpa",
            "ltv",
            "cac",
        )
    )
    if by is None and output == "table":
        columns = tuple(c for c in columns if c != "group")
    _print_rows(report, columns, output, f"Metrics ({report.currency}, {tz})")


@app.command()
def cohorts(
    first: FromOption = None,
    last: ToOption = None,
    interval: IntervalOption = "month",
    tz: TzOption = "UTC",
    output: FormatOption = "table",
    db: DbOption = None,
) -> None:
    """Logo and revenue retention of each sign-up cohort over the following periods."""
    _check_choice(output, render.FORMATS, "--format")
    _check_choice(interval, INTERVALS, "--interval")
    try:
        start, end = _range(first, last, interval, tz)
        with _engine(db).connect() as connection:
            report = compute_cohorts(connection, start, end, interval, tz)
    except PeriodError as error:
        raise _fail(str(error)) from None
    _print_rows(report, COHORT_FIELDS, output, f"Cohorts ({report.currency}, {tz})")


@app.command()
def demo(
    customers_count: Annotated[int, typer.Option("--customers", min=1)] = 5000,
    months: Annotated[int, typer.Option("--months", min=1)] = 36,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    end: Annotated[
        str | None, typer.Option("--end", help="Last month, YYYY-MM (default: this month).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the files here instead of ingesting them.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Generate the demo company (a UK wedding-supplier SaaS) and ingest it, or write its files."""
    spec = DemoSpec(customers=customers_count, months=months, seed=seed, end_month=end)
    if out is not None:
        files = _write_demo_with_progress(spec, out)
        console.print(
            f"wrote {files.customers:,} customers and {files.subscription_events:,} "
            f"subscription events to {out}"
        )
        return
    engine = _engine(db)
    with engine.connect() as connection:
        existing = _customer_count(connection)
    if existing:
        # The demo is for an empty database: never mix invented customers into real data.
        console.print(
            f"The database already holds {existing:,} customers; the demo company was not "
            "added. Use --db for a new database, or --out to write the files."
        )
        return
    with tempfile.TemporaryDirectory(prefix="execmetrics-demo-") as folder:
        _write_demo_with_progress(spec, Path(folder))
        try:
            result = _ingest_with_progress(engine, [Path(folder)], quiet=False)
        except IngestError as error:
            _print_problems(error)
            raise typer.Exit(1) from None
    _print_ingest_summary(result)


def _write_demo_with_progress(spec: DemoSpec, folder: Path) -> DemoFiles:
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
        ) as bar:
            task = bar.add_task("generate demo company", total=spec.customers)
            return write_demo(spec, folder, lambda done: bar.advance(task, done))
    except ValueError as error:
        raise _fail(str(error)) from None


@app.command()
def report(
    months: Annotated[int, typer.Option("--months", min=1, help="Months in the table.")] = 12,
    tz: TzOption = "UTC",
    db: DbOption = None,
) -> None:
    """The executive report: headline figures for the last complete month and its movements."""
    engine = _engine(db)
    with engine.connect() as connection:
        if not _customer_count(connection):
            raise _fail(
                "the database holds no data yet: run `execmetrics ingest DIR` "
                "or `execmetrics demo`",
                1,
            )
        try:
            start, end = _range(None, None, "month", tz, periods=months)
        except PeriodError as error:
            raise _fail(str(error)) from None
        result = compute_metrics(connection, start, end, "month", tz)
    console.print(render.executive_report(result, "Executive report"))


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Apply pending schema migrations."""
    _engine(db)
    console.print("database schema is up to date")


@settings_app.command("show")
def settings_show(db: DbOption = None) -> None:
    """Print the database's settings."""
    with _engine(db).connect() as connection:
        for key, value in all_settings(connection).items():
            console.print(f"{key} = {value}")


@settings_app.command("set")
def settings_set(key: str, value: str, db: DbOption = None) -> None:
    """Change a setting (reporting_currency only before any data is ingested)."""
    with _engine(db).begin() as connection:
        empty = not _customer_count(connection)
        try:
            set_setting(connection, key, value, database_is_empty=empty)
        except SettingError as error:
            raise _fail(str(error)) from None
    console.print(f"{key} = {value}")


if __name__ == "__main__":
    app()

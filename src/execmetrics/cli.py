"""The `execmetrics` command line."""

from __future__ import annotations

import getpass
import json
import os
import secrets
import sys
import tempfile
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
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
from rich.table import Table
from sqlalchemy import Connection, Engine, func, select

from execmetrics import render
from execmetrics.accounts.roles import ROLE_NAMES, Role
from execmetrics.accounts.service import (
    create_token,
    create_user,
    list_tokens,
    list_users,
    revoke_token,
)
from execmetrics.audit.chain import AuditEntry, append, verify
from execmetrics.config import SettingsError, get_settings
from execmetrics.demo import DemoFiles, DemoSpec, write_demo
from execmetrics.errors import ServiceError
from execmetrics.ingest.problems import IngestError
from execmetrics.ingest.service import IngestProgress, IngestResult, ingest_files
from execmetrics.kpi.service import Diff, current_kpis
from execmetrics.metrics.cohorts import COHORT_FIELDS, compute_cohorts
from execmetrics.metrics.periods import (
    INTERVALS,
    PeriodError,
    default_range,
    time_zone,
)
from execmetrics.metrics.queries import BreakdownError
from execmetrics.metrics.service import FIELDS, MetricsError, MetricsReport, compute_metrics
from execmetrics.money import Money
from execmetrics.settings_store import (
    SettingError,
    all_settings,
    reporting_currency,
    set_setting,
)
from execmetrics.store.database import open_database
from execmetrics.store.tables import customers
from execmetrics.timeutil import format_micros, now_micros, parse_duration
from execmetrics.yaml_config import ConfigError

app = typer.Typer(
    help="Executive SaaS metrics from your subscription data.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
settings_app = typer.Typer(help="Per-database settings.", no_args_is_help=True)
users_app = typer.Typer(help="Dashboard users.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
kpis_app = typer.Typer(help="KPI definitions, as code (docs/kpis.md).", no_args_is_help=True)
churn_app = typer.Typer(help="Churn prediction (docs/churn.md).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(settings_app, name="settings")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.add_typer(kpis_app, name="kpis")
app.add_typer(churn_app, name="churn")

# Tables need room: when output goes to a file or pipe, lay it out 200 columns wide.
if TYPE_CHECKING:
    from execmetrics.analytics.metric_series import NamedSeries
    from execmetrics.notify.registry import Sealer

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
TableOrJson = Annotated[str, typer.Option("--format", help="table or json.")]
SeriesName = Annotated[
    str | None,
    typer.Argument(
        help="mrr, arr, customers, new_mrr, net_new_mrr, churned_mrr or kpi:NAME "
        "(or give --series)",
        show_default=False,
    ),
]
SeriesFile = Annotated[
    Path | None,
    typer.Option("--series", help="CSV file with columns period,value.", show_default=False),
]


def _engine(db: str | None) -> Engine:
    # Whoever runs the command line holds the database credentials: on PostgreSQL its
    # connections read and write as admin under row-level security.
    return open_database(db or get_settings().database_url, session_role=Role.ADMIN.value)


def _fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _print_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _check_choice(value: str, choices: tuple[str, ...], parameter: str) -> None:
    if value not in choices:
        raise _fail(f"{parameter}: expected one of {', '.join(choices)}, got {value!r}")


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
    keep_activity_rows: Annotated[
        bool,
        typer.Option(
            "--keep-activity-rows",
            help="Keep each activity event's row, not only the daily counts "
            "(also EXECMETRICS_KEEP_ACTIVITY_ROWS).",
        ),
    ] = False,
) -> None:
    """Ingest customers, subscription events, fx rates, marketing spend, support tickets and
    activity events (all or nothing)."""
    _check_choice(output, ("table", "json"), "--format")
    engine = _engine(db)
    keep_rows = keep_activity_rows or get_settings().keep_activity_rows
    try:
        result = _ingest_with_progress(engine, paths, output == "json", keep_rows)
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
    _warm_shared_cache(engine)


def _warm_shared_cache(engine: Engine) -> None:
    """With Redis, the servers share a document cache: fill it for the new data now, so the
    first dashboard view after an ingestion does not wait for the computation."""
    redis_url = get_settings().redis_url
    if redis_url is not None:
        # Here, not at module level: the Redis client costs every command 0.07 s to load.
        from execmetrics.metrics.cache import DocumentCache, warm_documents

        with engine.connect() as connection:
            warm_documents(DocumentCache(redis_url), connection)


def _print_problems(error: IngestError) -> None:
    # Plain writes: a problem line must survive pipes intact (no wrapping, markup or emoji).
    sys.stderr.write(f"Nothing was ingested: {error.total} problem(s)\n{error.summary()}\n")


def _ingest_with_progress(
    engine: Engine, paths: list[Path], quiet: bool, keep_activity_rows: bool = False
) -> IngestResult:
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
            engine,
            paths,
            progress=IngestProgress(on_file, on_rows, on_ledger_start, on_ledger),
            keep_activity_rows=keep_activity_rows,
        )


def _print_ingest_summary(result: IngestResult) -> None:
    for kind, counts in result.counts.items():
        if counts.received:
            updated = f", {counts.updated:,} updated" if counts.updated else ""
            console.print(
                f"{kind}: {counts.inserted:,} new, {counts.unchanged:,} unchanged{updated}"
            )
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
        start, end = default_range(first, last, interval, tz)
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
    """Logo, revenue and activity retention of each sign-up cohort over the following
    periods."""
    _check_choice(output, render.FORMATS, "--format")
    _check_choice(interval, INTERVALS, "--interval")
    try:
        start, end = default_range(first, last, interval, tz)
        with _engine(db).connect() as connection:
            report = compute_cohorts(connection, start, end, interval, tz)
    except PeriodError as error:
        raise _fail(str(error)) from None
    title = f"Cohorts ({report.currency}, {tz})"
    if output != "table":
        _print_rows(report, COHORT_FIELDS, output, title)
        return
    console.print(render.rows_table(report, list(COHORT_FIELDS), title))


@app.command()
def forecast(
    name: SeriesName = None,
    series_file: SeriesFile = None,
    horizon: Annotated[int, typer.Option("--horizon", help="Periods ahead.")] = 12,
    output: TableOrJson = "table",
    tz: TzOption = "UTC",
    db: DbOption = None,
) -> None:
    """Forecast a series with 80% and 95% intervals, by the model that backtests best."""
    # statsmodels and pandas load in a second: only for the commands that need them.
    from execmetrics.analytics.forecast import ForecastError
    from execmetrics.analytics.service import forecast_of

    _check_choice(output, ("table", "json"), "--format")
    named = _named_series(name, series_file, tz, db)
    try:
        document = forecast_of(named, horizon)
    except ForecastError as error:
        raise _fail(str(error)) from None
    if output == "json":
        _print_json(document)
        return
    _print_forecast(document)


def _named_series(
    name: str | None, series_file: Path | None, tz: str, db: str | None
) -> NamedSeries:
    """The series a command was given: a file, or a name of the engine's own series."""
    from execmetrics.analytics.metric_series import NamedSeries, stored_series
    from execmetrics.analytics.series import SeriesError, read_series_csv

    if (name is None) == (series_file is None):
        raise _fail("give a series name (such as mrr) or --series FILE, not both or neither")
    try:
        if series_file is not None:
            return NamedSeries(str(series_file), read_series_csv(series_file), "number", "")
        assert name is not None
        today = datetime.now(time_zone(tz)).date()
        with _engine(db).connect() as connection:
            return stored_series(connection, name, today, tz)
    except (SeriesError, PeriodError) as error:
        raise _fail(str(error)) from None


@app.command()
def anomalies(
    name: SeriesName = None,
    series_file: SeriesFile = None,
    method: Annotated[
        str, typer.Option("--method", help="robust_seasonal or rolling_zscore.")
    ] = "robust_seasonal",
    sensitivity: Annotated[
        float | None,
        typer.Option(
            "--sensitivity",
            help="Band half-width in the method's units (default: 1.73 robust, 2 z-score).",
            show_default=False,
        ),
    ] = None,
    output: TableOrJson = "table",
    tz: TzOption = "UTC",
    db: DbOption = None,
) -> None:
    """Judge every point of a series against its past: expected value, band, score, flag."""
    from execmetrics.analytics.anomaly import AnomalyError
    from execmetrics.analytics.service import anomalies_of

    _check_choice(output, ("table", "json"), "--format")
    named = _named_series(name, series_file, tz, db)
    try:
        document = anomalies_of(named, method, sensitivity)
    except AnomalyError as error:
        raise _fail(str(error)) from None
    if output == "json":
        _print_json(document)
        return
    _print_anomalies(document)


def _print_anomalies(document: dict[str, Any]) -> None:
    flagged = [point for point in document["points"] if point["flag"]]
    title = (
        f"{document['series']}: {len(flagged)} of {len(document['points'])} points flagged "
        f"({document['method']}, sensitivity {document['sensitivity']})"
    )
    table = Table(title=title, box=box.SIMPLE_HEAVY)
    columns = ("period", "value", "expected", "lower", "upper", "score")
    for column in columns:
        table.add_column(column, justify="left" if column == "period" else "right")
    for point in flagged:
        table.add_row(*(str(point[column]) for column in columns))
    console.print(table)


def _print_forecast(document: dict[str, Any]) -> None:
    backtest = document["backtest"]
    title = (
        f"Forecast of {document['series']}: {document['model']}, backtest MASE "
        f"{backtest['mase']} against {backtest['baseline']} {backtest['baseline_mase']}"
    )
    table = Table(title=title, box=box.SIMPLE_HEAVY)
    columns = ("period", "forecast", "lower_95", "lower_80", "upper_80", "upper_95")
    for column in columns:
        table.add_column(column, justify="left" if column == "period" else "right")
    for row in document["forecast"]:
        table.add_row(*(str(row[column]) for column in columns))
    console.print(table)
    for note in document["notes"]:
        console.print(f"note: {note}", highlight=False)


@churn_app.command("evaluate")
def churn_evaluate(
    features: Annotated[
        Path, typer.Option("--features", help="CSV file: one row per customer.", show_default=False)
    ],
    label: Annotated[
        str, typer.Option("--label", help="The column that says who churned.", show_default=False)
    ],
    id_column: Annotated[
        str, typer.Option("--id", help="The column that identifies a row.", show_default=False)
    ],
    folds: Annotated[int, typer.Option("--folds", help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds and models.")] = 0,
    output: TableOrJson = "table",
) -> None:
    """Cross-validate the churn models on a table of features and a label you bring."""
    from execmetrics.analytics.churn_model import (
        ChurnModelError,
        cross_validate,
        evaluation_document,
    )
    from execmetrics.analytics.feature_table import FeatureTableError, read_feature_table

    _check_choice(output, ("table", "json"), "--format")
    try:
        table = read_feature_table(features, label, id_column)
        document = evaluation_document(cross_validate(table, folds, seed))
    except (FeatureTableError, ChurnModelError) as error:
        raise _fail(str(error)) from None
    if output == "json":
        _print_json(document)
        return
    title = (
        f"{document['folds']}-fold cross-validation: {document['rows']} rows, "
        f"{document['churned']} churned; chosen: {document['chosen']}"
    )
    result = Table(title=title, box=box.SIMPLE_HEAVY)
    for column in ("model", "ROC AUC", "± (folds)", "PR AUC", "Brier"):
        result.add_column(column, justify="left" if column == "model" else "right")
    for name, scores in document["models"].items():
        result.add_row(
            name, f"{scores['roc_auc']:.4f}", f"{scores['roc_auc_spread']:.4f}",
            f"{scores['pr_auc']:.4f}", f"{scores['brier']:.4f}",
        )  # fmt: skip
    console.print(result)


AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="The date, YYYY-MM-DD (default: today, UTC).", show_default=False),
]
HorizonOption = Annotated[
    int | None,
    typer.Option("--horizon", help="Days ahead (default EXECMETRICS_CHURN_HORIZON_DAYS, 60).",
                 show_default=False),
]  # fmt: skip
WeightsOption = Annotated[
    str | None,
    typer.Option("--weights", help="The weighted score's weights, e.g. "
                 "login=30,usage=25,tickets=20,contraction=15,tenure=10 "
                 "(default EXECMETRICS_CHURN_WEIGHTS).", show_default=False),
]  # fmt: skip


def _as_of(text: str | None) -> date:
    if text is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _fail(f"--as-of: expected a date YYYY-MM-DD, got {text!r}") from None


def _churn_settings(horizon: int | None, weights: str | None) -> tuple[int, dict[str, float]]:
    from execmetrics.analytics.churn_weights import WeightsError, parse_weights

    settings = get_settings()
    horizon = settings.churn_horizon_days if horizon is None else horizon
    if not 7 <= horizon <= 365:
        raise _fail(f"--horizon: expected 7 to 365 days, got {horizon}")
    try:
        return horizon, parse_weights(weights) if weights else settings.weights()
    except WeightsError as error:
        raise _fail(f"--{error}") from None


@churn_app.command("train")
def churn_train(
    as_of: AsOfOption = None,
    horizon: HorizonOption = None,
    weights: WeightsOption = None,
    db: DbOption = None,
    output: TableOrJson = "table",
) -> None:
    """Train the churn model on the company's history (a time split), judge it against the
    weighted risk score, and store the winner as a new version."""
    from execmetrics.analytics.churn import train_churn_model
    from execmetrics.analytics.churn_store import save_model

    _check_choice(output, ("table", "json"), "--format")
    day = _as_of(as_of)
    days, chosen_weights = _churn_settings(horizon, weights)
    with _engine(db).begin() as connection, errors.status("training churn models"):
        model = train_churn_model(connection, day, days, chosen_weights)
        version = save_model(connection, model, now_micros())
    document = {"version": version, "method": model.method, "horizon_days": days,
                "as_of": model.as_of.isoformat(), "reason": model.reason,
                "evaluation": model.evaluation}  # fmt: skip
    if output == "json":
        _print_json(document)
        return
    console.print(f"churn model version {version}: {model.method}", highlight=False)
    console.print(model.reason, highlight=False)
    judged = model.evaluation.get("test", {})
    if judged:
        result = Table(title="on the test snapshot", box=box.SIMPLE_HEAVY)
        for column in ("method", "ROC AUC", "PR AUC", "Brier"):
            result.add_column(column, justify="left" if column == "method" else "right")
        for name, scores in judged.items():
            result.add_row(name, *(f"{scores[m]:.4f}" for m in ("roc_auc", "pr_auc", "brier")))
        console.print(result)


@churn_app.command("score")
def churn_score(
    as_of: AsOfOption = None,
    top: Annotated[int, typer.Option("--top", help="Customers to print, riskiest first.")] = 20,
    db: DbOption = None,
    output: TableOrJson = "table",
) -> None:
    """Score every paying customer with the latest churn model (training one first if there
    is none), store the scores, and print the riskiest with their factors."""
    from execmetrics.analytics.churn import score_customers, train_churn_model
    from execmetrics.analytics.churn_store import latest_model, run_scores, save_model, save_scores

    _check_choice(output, ("table", "json"), "--format")
    if top < 0:
        raise _fail(f"--top: expected 0 or more, got {top}")
    day = _as_of(as_of)
    with _engine(db).begin() as connection, errors.status("scoring churn risk"):
        stored = latest_model(connection)
        if stored is None:
            days, chosen_weights = _churn_settings(None, None)
            model = train_churn_model(connection, day, days, chosen_weights)
            version = save_model(connection, model, now_micros())
        else:
            model, version = stored.model, stored.version
        currency = reporting_currency(connection)
        risk = score_customers(connection, model, day, currency)
        run = save_scores(connection, version, risk, now_micros())
        total, rows = run_scores(connection, run, top)
    document = {"run": run, "model_version": version, "method": model.method,
                "horizon_days": model.horizon_days, "as_of": day.isoformat(),
                "customers": total, "currency": currency,
                "top": [row | {"probability": round(row["probability"], 4)}
                        for row in rows]}  # fmt: skip
    if output == "json":
        _print_json(document)
        return
    what = "risk score" if model.method == "weighted_score" else "probability"
    result = Table(
        title=f"churn risk within {model.horizon_days} days, as of {day} "
        f"(model version {version}: {model.method}); {total:,} paying customers",
        box=box.SIMPLE_HEAVY,
    )
    for column in ("customer", what, "MRR", "factors"):
        result.add_column(column, justify="right" if column in (what, "MRR") else "left")
    for row in rows:
        result.add_row(
            row["customer_id"], f"{100 * row['probability']:.0f}%",
            Money(row["mrr"], currency).format(whole=True), "; ".join(row["factors"]),
        )  # fmt: skip
    console.print(result)


@app.command("daily-analytics")
def daily_analytics(
    as_of: AsOfOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Score and segment again if done today.")
    ] = False,
    db: DbOption = None,
) -> None:
    """The daily analytics job: retrain the churn model when it is a week old, score and
    segment every paying customer once a day (for cron; `serve` and `worker` run it
    themselves)."""
    from execmetrics.analytics.jobs import run_daily_analytics

    days, chosen_weights = _churn_settings(None, None)
    with _engine(db).begin() as connection, errors.status("daily analytics"):
        report = run_daily_analytics(
            connection, _as_of(as_of), now_micros(), days, chosen_weights, force
        )
    trained = "retrained" if report.retrained else "kept"
    scored = "already scored today" if report.run_id is None else (
        f"scored {report.customers:,} customers (run {report.run_id})")  # fmt: skip
    console.print(f"churn model version {report.model_version} ({report.method}) {trained}; "
                  f"{scored}; {report.segments_in_words()}", highlight=False)  # fmt: skip


@app.command()
def segments(
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="CSV file: one row per customer (default: the built-in behaviour features of "
            "every paying customer).",
            show_default=False,
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id", help="With --features: the column that identifies a row.", show_default=False
        ),
    ] = None,
    as_of: AsOfOption = None,
    k: Annotated[int | None, typer.Option("--k", help="Segments (default 5).")] = None,
    choose_k: Annotated[
        bool, typer.Option("--choose-k", help="Choose k from 2 to 8 by silhouette.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of k-means.")] = 0,
    assignments: Annotated[
        Path | None,
        typer.Option("--assignments", help="Write id,segment,name for every row to this CSV file."),
    ] = None,
    db: DbOption = None,
    output: TableOrJson = "table",
) -> None:
    """Segment customers by k-means: every paying customer by MRR, tenure, logins, feature
    breadth and tickets (named power users, steady, new, at risk, inactive), or the rows of a
    table you bring (docs/segments.md)."""
    import csv

    from execmetrics.analytics.company_segments import company_segments
    from execmetrics.analytics.feature_table import FeatureTableError, read_feature_table
    from execmetrics.analytics.segments import (
        DEFAULT_K,
        SegmentsError,
        segment_customers,
        segmentation_document,
    )

    _check_choice(output, ("table", "json"), "--format")
    if choose_k and k is not None:
        raise _fail("give --k or --choose-k, not both")
    if k is not None and k < 2:
        raise _fail(f"--k: expected 2 or more, got {k}")
    if not 0 <= seed < 2**32:
        raise _fail(f"--seed: expected 0 to {2**32 - 1}, got {seed}")
    chosen = None if choose_k else (DEFAULT_K if k is None else k)
    try:
        if features is None:
            if id_column is not None:
                raise _fail("--id: only with --features; the built-in features are by customer_id")
            day = _as_of(as_of)
            id_header = "customer_id"
            with _engine(db).connect() as connection, errors.status("segmenting customers"):
                result = company_segments(connection, day, chosen, seed, given=k is not None)
        else:
            if id_column is None:
                raise _fail("--id: required with --features: the column that identifies a row")
            for option, value in (("--as-of", as_of), ("--db", db)):
                if value is not None:
                    raise _fail(f"{option}: not used with --features, which brings its own rows")
            id_header = id_column
            table = read_feature_table(features, None, id_column)
            result = segment_customers(table, chosen, seed, given=k is not None)
    except FeatureTableError as error:
        raise _fail(str(error)) from None
    except SegmentsError as error:
        raise _fail(f"--{error}") from None
    names = result.names()
    if assignments is not None:
        try:
            with assignments.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow([id_header, "segment", "name"])
                writer.writerows([row_id, number, names[number]] for row_id, number in
                                 result.assignments.items())  # fmt: skip
        except OSError as error:
            raise _fail(f"--assignments: cannot write {assignments}: {error.strerror}") from None
    document = segmentation_document(result)
    if output == "json":
        _print_json(document)
        return
    currency = result.currency
    if currency is None:
        title = (
            f"{result.k} segments of {result.rows} rows ({result.chosen_by} k), "
            f"silhouette {document['silhouette']}"
        )
        shown = Table(title=title, box=box.SIMPLE_HEAVY)
        for column in ("segment", "name", "size", "share", *result.features):
            shown.add_column(column, justify="left" if column == "name" else "right")
        for found in result.segments:
            shown.add_row(
                str(found.number), found.name, str(found.size), f"{found.size / result.rows:.1%}",
                *(f"{found.centre[name]:.6g}" for name in result.features),
            )  # fmt: skip
        console.print(shown)
        return
    title = (
        f"{result.k} segments of {result.rows:,} paying customers as of {result.as_of} "
        f"({result.chosen_by} k), silhouette {document['silhouette']}; each segment's centre"
    )
    shown = Table(title=title, box=box.SIMPLE_HEAVY)
    for column in ("segment", "name", "customers", "share", "MRR", "centre: MRR", "tenure days",
                   "logins 30d", "features 90d", "tickets 90d"):  # fmt: skip
        shown.add_column(column, justify="left" if column == "name" else "right")
    for found in result.segments:
        centroid = found.centroid
        shown.add_row(
            str(found.number), found.name, f"{found.size:,}", f"{found.size / result.rows:.1%}",
            Money(int(found.mrr or 0), currency).format(whole=True),
            Money(round(centroid["mrr"]), currency).format(whole=True),
            f"{centroid['tenure_days']:,.0f}", f"{centroid['logins_30d']:.1f}",
            f"{centroid['feature_breadth_90d']:.1f}", f"{centroid['tickets_90d']:.1f}",
        )  # fmt: skip
    console.print(shown)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


@app.command()
def quality(
    freshness: Annotated[
        str,
        typer.Option("--freshness", help="How old the newest row may be, e.g. 2d or 36h."),
    ] = "2d",
    output: TableOrJson = "table",
    db: DbOption = None,
) -> None:
    """Data quality scores from 0 to 100, per check, dataset and overall (docs/quality.md)."""
    from execmetrics.analytics.service import quality_of

    _check_choice(output, ("table", "json"), "--format")
    try:
        limit = parse_duration(freshness)
    except ValueError as error:
        raise _fail(f"--freshness: {error}") from None
    with _engine(db).connect() as connection:
        document = quality_of(connection, limit)
    if output == "json":
        _print_json(document)
        return
    title = f"Data quality: {document['overall']} overall, measured {document['measured_at']}"
    shown = Table(title=title, box=box.SIMPLE_HEAVY)
    for column in ("dataset", "dimension", "check", "score", "failing", "of", "examples"):
        shown.add_column(
            column, justify="right" if column in ("score", "failing", "of") else "left"
        )
    for check in document["checks"]:
        shown.add_row(
            check["dataset"], check["dimension"], check["check"], str(check["score"]),
            str(check["failing"]), str(check["total"]), ", ".join(check["examples"]),
        )  # fmt: skip
    console.print(shown)


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
            f"wrote {files.customers:,} customers, {files.subscription_events:,} "
            f"subscription events, {files.support_tickets:,} support tickets and "
            f"{files.activity_events:,} activity events to {out}"
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
    _warm_shared_cache(engine)


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
            start, end = default_range(None, None, "month", tz, periods=months)
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
            _cli_audit(connection, "settings set", f"setting:{key}", value=value)
        except SettingError as error:
            raise _fail(str(error)) from None
    console.print(f"{key} = {value}")


def _cli_audit(connection: Connection, action: str, resource: str, **parameters: object) -> None:
    """Changes made from the command line are audited like those made through the API."""
    append(
        connection,
        AuditEntry(
            request_id=uuid.uuid4().hex,
            identity=f"cli:{getpass.getuser()}",
            role=Role.ADMIN.value,
            action=action,
            resource=resource,
            parameters=dict(parameters),
            client="local",
        ),
    )


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return str(password)


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option("--email")],
    role: Annotated[str, typer.Option("--role", help=", ".join(ROLE_NAMES))],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Create a dashboard user (prompts for the password)."""
    _check_choice(role, ROLE_NAMES, "--role")
    password = _read_password(password_stdin)
    try:
        with _engine(db).begin() as connection:
            create_user(connection, email, password, Role(role))
            _cli_audit(connection, "users create", f"user:{email.strip().lower()}", role=role)
    except ServiceError as error:
        raise _fail(error.detail) from None
    console.print(f"created {role} {email.strip().lower()}")


@users_app.command("list")
def users_list(db: DbOption = None) -> None:
    """Every dashboard user."""
    with _engine(db).connect() as connection:
        for user in list_users(connection):
            state = "disabled" if user["disabled_at"] else "active"
            console.print(f"{user['email']}  {user['role']}  {state}", highlight=False)


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option("--name")],
    role: Annotated[str, typer.Option("--role", help=", ".join(ROLE_NAMES))],
    expires: Annotated[str, typer.Option("--expires", help="Lifetime: 90d, 12h or 30m.")] = "90d",
    db: DbOption = None,
) -> None:
    """Create an API token and print it, once: only its hash is stored."""
    _check_choice(role, ROLE_NAMES, "--role")
    try:
        lifetime = parse_duration(expires)
    except ValueError as error:
        raise _fail(f"--expires: {error}") from None
    try:
        with _engine(db).begin() as connection:
            token, expires_at = create_token(connection, name, Role(role), lifetime)
            _cli_audit(connection, "tokens create", f"token:{name}", role=role, expires=expires)
    except ServiceError as error:
        raise _fail(error.detail) from None
    errors.print(
        f"token {name!r} ({role}) expires {format_micros(expires_at)}; it is shown only now:"
    )
    sys.stdout.write(token + "\n")


@tokens_app.command("revoke")
def tokens_revoke(name: str, db: DbOption = None) -> None:
    """Revoke an API token at once."""
    try:
        with _engine(db).begin() as connection:
            revoke_token(connection, name)
            _cli_audit(connection, "tokens revoke", f"token:{name}")
    except ServiceError as error:
        raise _fail(error.detail, 1) from None
    console.print(f"revoked {name}")


@tokens_app.command("list")
def tokens_list(db: DbOption = None) -> None:
    """Every API token (never the token itself)."""
    now = now_micros()
    with _engine(db).connect() as connection:
        for token in list_tokens(connection):
            state = (
                "revoked" if token["revoked_at"]
                else "expired" if int(str(token["expires_at"])) <= now
                else f"expires {format_micros(int(str(token['expires_at'])))}"
            )  # fmt: skip
            console.print(f"{token['name']}  {token['role']}  {state}", highlight=False)


@audit_app.command("verify")
def audit_verify(db: DbOption = None) -> None:
    """Check the audit trail's hash chain; exit 1 at the first broken record."""
    with _engine(db).connect() as connection:
        result = verify(connection)
    if result.intact:
        console.print(f"audit trail intact: {result.records:,} records, head {result.head_hash}")
        return
    errors.print(
        f"[red]audit trail broken[/] at record {result.broken_seq}: {result.reason} "
        f"({result.records:,} records before it are intact)",
        highlight=False,
    )
    raise typer.Exit(1)


@kpis_app.command("apply")
def kpis_apply(
    file: Annotated[
        Path, typer.Argument(help="A YAML file with kpis, rules, policies and channels.")
    ],
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Remove stored items of each section the file does not list."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Create or update KPIs, alert rules, escalation policies and channels from a file,
    idempotently, and print what changed."""
    from execmetrics.as_code import apply_declared, read_declared

    try:
        declared = read_declared(file)
        with _engine(db).begin() as connection:
            diffs = apply_declared(
                connection, declared, f"cli:{getpass.getuser()}", _sealer(), prune, dry_run,
                get_settings().outbound_allow,
            )  # fmt: skip
            changed = {name: diff for name, diff in diffs.items() if not diff.empty}
            if not dry_run and changed:
                _cli_audit(
                    connection, "kpis apply", "configuration",
                    **{name: _diff_names(diff) for name, diff in changed.items()},
                )  # fmt: skip
    except ConfigError as error:
        # Plain writes: each problem line must survive pipes intact.
        sys.stderr.write(f"Nothing was applied: {len(error.problems)} problem(s)\n{error}\n")
        raise typer.Exit(2) from None
    for section, diff in diffs.items():
        _print_diff(section, diff, dry_run)


def _sealer() -> Sealer:
    from execmetrics.notify.registry import sealer

    return sealer(get_settings())


def _diff_names(diff: Diff) -> dict[str, list[str]]:
    return {"created": diff.created, "changed": sorted(diff.changed), "removed": diff.removed}


def _print_diff(section: str, diff: Diff, dry_run: bool) -> None:
    for name in diff.created:
        console.print(f"[green]+ {name}[/] created", highlight=False)
    for name, changes in diff.changed.items():
        console.print(f"[yellow]~ {name}[/] changed", highlight=False)
        for change in changes:
            console.print(
                f"    {change.field}: {change.before!r} -> {change.after!r}",
                highlight=False,
                markup=False,
            )
    for name in diff.removed:
        console.print(f"[red]- {name}[/] removed", highlight=False)
    verb = "would change" if dry_run else "changed"
    console.print(
        f"{section}: {len(diff.created) + len(diff.changed) + len(diff.removed)} {verb}, "
        f"{len(diff.unchanged)} unchanged"
    )


@kpis_app.command("evaluate")
def kpis_evaluate(
    on: Annotated[
        str | None,
        typer.Option("--date", help="Evaluate as of this day, YYYY-MM-DD (default: today)."),
    ] = None,
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone of the day.")] = "UTC",
    db: DbOption = None,
) -> None:
    """Evaluate every KPI and store each value once per data version; print them."""
    from execmetrics.analytics.quality_store import refresh_quality
    from execmetrics.kpi.evaluation import record_evaluations

    try:
        zone = time_zone(tz)
        day = date.fromisoformat(on) if on else datetime.now(zone).date()
    except PeriodError as error:
        raise _fail(str(error)) from None
    except ValueError:
        raise _fail(f"--date: expected YYYY-MM-DD, got {on!r}") from None
    with _engine(db).begin() as connection:
        # The quality KPIs read the newest quality report: measured now when one is due.
        refresh_quality(connection, now_micros())
        evaluations = record_evaluations(connection, day, tz)
        definitions = current_kpis(connection)
        currency = reporting_currency(connection)
    table = Table(title=f"KPIs as of {day.isoformat()}", box=box.SIMPLE_HEAD)
    for heading in ("KPI", "Period", "Value", "Stored"):
        table.add_column(heading, justify="right" if heading == "Value" else "left")
    for evaluation in evaluations:
        unit = definitions[evaluation.name].definition.unit.value
        table.add_row(
            evaluation.name,
            evaluation.period,
            render.format_kpi_value(evaluation.value, unit, currency),
            "new" if evaluation.recorded else "already",
        )
    console.print(table)


@kpis_app.command("export")
def kpis_export(
    out: Annotated[Path | None, typer.Option("--out", help="Write here, not to stdout.")] = None,
    db: DbOption = None,
) -> None:
    """Write the current KPIs, rules, policies and channels as YAML, in the form `kpis apply`
    reads; channel secrets are left out."""
    from execmetrics.as_code import export_document, stored_declared

    with _engine(db).connect() as connection:
        text = export_document(stored_declared(connection, _sealer()))
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Server processes.")] = 1,
    first_admin: Annotated[
        bool,
        typer.Option(
            "--first-admin", help="With no users yet, create an admin and print a one-time sign-in."
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Serve the API and the dashboard."""
    import uvicorn

    if db:
        os.environ["EXECMETRICS_DATABASE_URL"] = db
    settings = get_settings()
    try:
        settings.check_for_serving()
    except SettingsError as error:
        raise _fail(str(error)) from None
    engine = open_database(settings.database_url)
    if first_admin:
        _create_first_admin(engine)
    console.print(f"execmetrics is serving on http://{host}:{port}/", highlight=False)
    uvicorn.run(
        "execmetrics.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        log_config=None,
        server_header=False,
    )


@app.command()
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="One round of evaluation and delivery, then exit.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Run the scheduler, the notification dispatcher and the analytics job (the data
    quality report, churn scores, segments) without the server."""
    import signal
    import threading

    from execmetrics.alerts.scheduler import scheduler_from_settings

    if db:
        os.environ["EXECMETRICS_DATABASE_URL"] = db
    settings = get_settings()
    try:
        settings.check_for_serving()
    except SettingsError as error:
        raise _fail(str(error)) from None
    scheduler = scheduler_from_settings(settings, open_database(settings.database_url))
    from execmetrics.analytics.jobs import refresh_quality_if_due, start_analytics_thread

    if once:
        # The quality KPIs read the newest quality report: measured first when one is due.
        refresh_quality_if_due(scheduler.engine, scheduler.config.holder, now_micros())
        cycle, sent = scheduler.tick()
        evaluated = "not this process (another holds the lease)" if cycle is None else (
            f"{cycle.evaluated} evaluated, {cycle.fired} fired, {cycle.resolved} resolved, "
            f"{cycle.queued} notifications queued"
        )  # fmt: skip
        console.print(f"rules: {evaluated}", highlight=False)
        console.print(
            f"notifications: {sent.delivered} delivered, {sent.retrying} to retry, "
            f"{sent.dead} dead",
            highlight=False,
        )
        return
    stop = threading.Event()
    wake_analytics = threading.Event()

    def stop_soon(*_: object) -> None:
        stop.set()
        scheduler.wake.set()
        wake_analytics.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_soon)
    start_analytics_thread(
        scheduler.engine, scheduler.config.holder, settings.churn_horizon_days,
        settings.weights(), stop, wake_analytics, scheduler.wake.set,
    )  # fmt: skip
    console.print("execmetrics worker is running (Ctrl+C stops it)", highlight=False)
    scheduler.run(stop)


@app.command()
def openapi(
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
) -> None:
    """Print the API's OpenAPI schema (docs/openapi.json is this, committed)."""
    from execmetrics.api.app import create_app
    from execmetrics.config import Settings
    from execmetrics.store.database import make_engine

    schema = create_app(Settings(scheduler=False), engine=make_engine("sqlite://")).openapi()
    text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)


def _create_first_admin(engine: Engine) -> None:
    with engine.begin() as connection:
        if list_users(connection):
            return
        email, password = "admin@localhost.localdomain", secrets.token_urlsafe(18)
        create_user(connection, email, password, Role.ADMIN)
        _cli_audit(connection, "users create", f"user:{email}", role="admin", first_admin=True)
    console.print(
        f"first admin created; sign in once as [bold]{email}[/] with password "
        f"[bold]{password}[/] and create your own users (`execmetrics users create`)",
        highlight=False,
    )


if __name__ == "__main__":
    app()

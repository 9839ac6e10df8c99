"""Revenue engine benchmark: demo files, full ingest, metrics, cohorts and incremental ingest.

Run with `make bench` or `.venv/bin/python bench/revenue_engine.py --help`. The product is
driven through its real command line (subprocesses, timed from the outside) and, for the
query and incremental figures, also in-process. stdout carries only the Markdown table; the
raw timings and the machine go to the JSON file given by --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

# The package has no py.typed marker yet (pyproject lists one): mypy then sees it as
# untyped, and the ignores must stay valid once the marker exists.
from execmetrics.ingest.service import ingest_files  # type: ignore[import-untyped, unused-ignore]
from execmetrics.metrics.cohorts import compute_cohorts  # type: ignore[import-untyped, unused-ignore]
from execmetrics.metrics.service import compute_metrics  # type: ignore[import-untyped, unused-ignore]
from execmetrics.store.database import open_database  # type: ignore[import-untyped, unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "revenue_engine.json"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASES = ("sqlite", "postgresql")
GNU_TIME = Path("/usr/bin/time")
PEAK_MARKER = "BENCH_PEAK_RSS_KB="
METRICS_MONTHS = 36
NEW_EVENTS = 1000
NEW_EVENT_AMOUNT = 4900

TARGET_EVENTS_PER_SECOND = {"sqlite": 50_000.0, "postgresql": 30_000.0}
TARGET_METRICS_SECONDS = 1.0
TARGET_NEW_EVENTS_SECONDS = 2.0
TARGET_PEAK_MB = 1000.0  # 1 GB, decimal


def log(message: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    sys.stderr.write(f"[{stamp}] {message}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- arguments


def month_label(text_value: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text_value):
        raise argparse.ArgumentTypeError(f"expected YYYY-MM, got {text_value!r}")
    return text_value


def database_list(text_value: str) -> list[str]:
    names = [name.strip() for name in text_value.split(",") if name.strip()]
    unknown = [name for name in names if name not in DATABASES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(DATABASES)}, got {text_value!r}"
        )
    return list(dict.fromkeys(names))


def positive(text_value: str) -> int:
    value = int(text_value)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text_value!r}")
    return value


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the execmetrics revenue engine on SQLite and PostgreSQL.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--customers", type=positive, default=100_000, help="demo customers")
    parser.add_argument("--months", type=positive, default=36, help="demo months")
    parser.add_argument("--seed", type=int, default=7, help="demo seed")
    parser.add_argument(
        "--end-month",
        type=month_label,
        default="2025-12",
        help="last demo month; fixed so that runs are comparable",
    )
    parser.add_argument(
        "--databases",
        type=database_list,
        default=list(DATABASES),
        help="comma-separated: sqlite,postgresql",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("EXECMETRICS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server to create (and drop) a fresh execmetrics_bench_* database on",
    )
    parser.add_argument("--repeat", type=positive, default=5, help="runs of each query timing")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="kept when given (default: a temp dir)"
    )
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- months


def shift_month(label: str, months: int) -> str:
    year, month = (int(part) for part in label.split("-"))
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_start(label: str) -> date:
    year, month = (int(part) for part in label.split("-"))
    return date(year, month, 1)


# --------------------------------------------------------------------------- machine


def machine_info(postgres_version: str | None) -> dict[str, Any]:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_bytes: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_bytes = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "memory_total_bytes": memory_bytes,
        "memory_total_gib": None if memory_bytes is None else round(memory_bytes / 2**30, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version,
        "git_commit": git_commit(),
    }


def git_output(*arguments: str) -> str | None:
    """What `git ARGUMENTS` prints in the repository, stripped; None when git fails."""
    try:
        result = subprocess.run(
            ["git", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=10,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_commit() -> str:
    return git_output("rev-parse", "--short", "HEAD") or "unknown"


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit; None when git cannot tell."""
    status = git_output("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


# --------------------------------------------------------------------------- subprocesses


@dataclass
class ChildRun:
    command: list[str]
    seconds: float
    peak_rss_kb: int | None
    returncode: int
    stdout: str
    stderr: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": redact(self.command),
            "seconds": self.seconds,
            "peak_rss_kb": self.peak_rss_kb,
            "returncode": self.returncode,
        }


class ChildFailed(RuntimeError):
    pass


def redact(command: list[str]) -> list[str]:
    """The command as recorded in the results: any password in a database URL hidden."""
    shown = []
    for part in command:
        if "://" in part:
            with suppress(Exception):  # not a URL after all: kept as it is
                part = make_url(part).render_as_string(hide_password=True)
        shown.append(part)
    return shown


def cli_path() -> str:
    beside = Path(sys.executable).parent / "execmetrics"
    if beside.exists():
        return str(beside)
    found = shutil.which("execmetrics")
    if found is None:
        raise SystemExit("execmetrics is not installed: run `make` (or pip install -e .)")
    return found


def run_child(arguments: list[str]) -> ChildRun:
    """Runs one product command and measures its wall time and peak resident memory."""
    command = [cli_path(), *arguments]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        if GNU_TIME.exists():
            started = time.perf_counter()
            completed = subprocess.run(
                [str(GNU_TIME), "-f", f"{PEAK_MARKER}%M", *command],
                stdout=out,
                stderr=err,
                check=False,
            )
            seconds = time.perf_counter() - started
            returncode = completed.returncode
            stderr = read_back(err)
            peak = parse_peak(stderr)
            stderr = "\n".join(line for line in stderr.splitlines() if PEAK_MARKER not in line)
        else:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=out, stderr=err)
            peak = poll_peak(process)
            seconds = time.perf_counter() - started
            returncode = process.returncode
            stderr = read_back(err)
        stdout = read_back(out)
    run = ChildRun(command, seconds, peak, returncode, stdout, stderr)
    if returncode != 0:
        tail = "\n".join(stderr.splitlines()[-30:])
        raise ChildFailed(
            f"{' '.join(redact(command))} exited with {returncode}:\n{tail}\n{stdout[-2000:]}"
        )
    return run


def read_back(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", errors="replace")


def parse_peak(stderr: str) -> int | None:
    for line in reversed(stderr.splitlines()):
        if line.startswith(PEAK_MARKER):
            return int(line.removeprefix(PEAK_MARKER).strip())
    return None


def poll_peak(process: subprocess.Popen[bytes]) -> int | None:
    """VmHWM is a high-water mark, so the last reading before exit is the peak; a zombie has
    no memory to report, so it must be read while the child is still running."""
    peak: int | None = None
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak or 0, int(line.split()[1]))
                    break
        except OSError:
            pass
        time.sleep(0.02)
    return peak


# --------------------------------------------------------------------------- input files


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def customer_ids(customers_csv: Path) -> list[str]:
    with customers_csv.open(encoding="utf-8", newline="") as handle:
        return [row["customer_id"] for row in csv.DictReader(handle)]


def write_new_events(
    template: Path,
    directory: Path,
    customers: list[str],
    first_number: int,
    end_month: str,
    seed: int,
) -> Path:
    """NEW_EVENTS `start` events of brand-new subscriptions for existing customers, at random
    instants of the last month, in the demo's own CSV column layout."""
    with template.open(encoding="utf-8", newline="") as handle:
        columns = next(csv.reader(handle))
    start = datetime.combine(month_start(end_month), datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(month_start(shift_month(end_month, 1)), datetime.min.time(), UTC)
    span = int((end - start).total_seconds())
    rng = random.Random(f"{seed}:{first_number}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "subscription_events.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for offset in range(NEW_EVENTS):
            number = first_number + offset
            instant = datetime.fromtimestamp(start.timestamp() + rng.randrange(span), UTC)
            writer.writerow(
                {
                    "event_id": f"bench_evt_{number}",
                    "customer_id": customers[(number - 1) % len(customers)],
                    "subscription_id": f"bench_sub_{number}",
                    "occurred_at": instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "type": "start",
                    "plan_id": "bench-monthly-gbp",
                    "tier": "Starter",
                    "amount_minor": str(NEW_EVENT_AMOUNT),
                    "quantity": "1",
                    "currency": "GBP",
                    "interval": "month",
                    "interval_count": "1",
                }
            )
    return directory


# --------------------------------------------------------------------------- databases


@contextmanager
def fresh_database(kind: str, url: str, work_dir: Path) -> Iterator[tuple[str, str | None]]:
    """(URL of an empty database, PostgreSQL server version); removed afterwards."""
    if kind == "sqlite":
        path = work_dir / f"bench-{secrets.token_hex(4)}.sqlite3"
        try:
            yield f"sqlite:///{path}", None
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    server = make_url(url)
    name = f"execmetrics_bench_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            version = str(connection.execute(text("SHOW server_version")).scalar_one())
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        log(f"created PostgreSQL database {name}")
        try:
            yield server.set(database=name).render_as_string(hide_password=False), version
        finally:
            with admin.connect() as connection:
                major = int(version.split(".")[0])
                force = " WITH (FORCE)" if major >= 13 else ""
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"{force}'))
            log(f"dropped PostgreSQL database {name}")
    finally:
        admin.dispose()


# --------------------------------------------------------------------------- measurements


def timed(function: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def summary(seconds: list[float]) -> dict[str, Any]:
    return {
        "runs": seconds,
        "median": statistics.median(seconds),
        "min": min(seconds),
        "max": max(seconds),
    }


@dataclass
class Context:
    arguments: argparse.Namespace
    files: Path
    events: int
    customers: list[str]
    batch_cli: Path
    batch_in_process: Path
    first: str
    last: str


def bench_database(kind: str, url: str, context: Context) -> dict[str, Any]:
    arguments = context.arguments
    result: dict[str, Any] = {}
    checks: list[str] = []  # the measurement itself is not valid
    warnings: list[str] = []  # the product misreports, the measurement stands

    log(f"{kind}: full ingest of {context.events:,} subscription events")
    ingest = run_child(["ingest", str(context.files), "--db", url, "--format", "json"])
    payload = json.loads(ingest.stdout)
    stored = stored_events(url)
    if stored != context.events:
        checks.append(f"full ingest: {stored} subscription events stored, {context.events} in file")
    inserted = payload.get("counts", {}).get("subscription_events", {}).get("inserted")
    if inserted != context.events:
        warnings.append(
            f"full ingest reports {inserted} subscription events inserted; {stored} were stored"
        )
    result["ingest"] = {
        **ingest.as_dict(),
        "subscription_events": context.events,
        "events_per_second": context.events / ingest.seconds,
        "reported_seconds": find_seconds(payload),
        "output": payload,
    }

    log(f"{kind}: metrics CLI {context.first}..{context.last}, {arguments.repeat} runs")
    metrics_arguments = ["metrics", "--from", context.first, "--to", context.last]
    cli_runs = [
        run_child([*metrics_arguments, "--db", url, "--format", "json"])
        for _ in range(arguments.repeat)
    ]
    cli_rows: list[dict[str, Any]] = json.loads(cli_runs[-1].stdout)["rows"]
    checks.extend(check_metric_rows(cli_rows, context.first, context.last))
    result["metrics_cli"] = {
        **summary([run.seconds for run in cli_runs]),
        "peak_rss_kb": max_peak(cli_runs),
        "command": redact(cli_runs[0].command),
    }

    first_day, last_day = month_start(context.first), month_start(context.last)
    engine = open_database(url)
    try:
        log(f"{kind}: metrics, --by segment and cohorts in-process, {arguments.repeat} runs each")

        def in_process(call: Callable[[Any], object]) -> tuple[list[float], object]:
            seconds: list[float] = []
            outcome: object = None
            for _ in range(arguments.repeat):
                with engine.connect() as connection:
                    elapsed, outcome = timed(lambda: call(connection))
                seconds.append(elapsed)
            return seconds, outcome

        seconds, report = in_process(lambda c: compute_metrics(c, first_day, last_day))
        result["metrics_in_process"] = summary(seconds)
        in_process_rows = getattr(report, "rows", [])
        if [(r["period"], r["mrr_end"]) for r in in_process_rows] != [
            (r["period"], r["mrr_end"]) for r in cli_rows
        ]:
            checks.append("metrics: in-process mrr_end differs from the CLI's JSON")
        seconds, _ = in_process(lambda c: compute_metrics(c, first_day, last_day, by="segment"))
        result["metrics_by_segment_in_process"] = summary(seconds)
        seconds, _ = in_process(lambda c: compute_cohorts(c, first_day, last_day))
        result["cohorts_in_process"] = summary(seconds)

        log(f"{kind}: {NEW_EVENTS:,} new events through the CLI")
        incremental = run_child(["ingest", str(context.batch_cli), "--db", url])
        checks.extend(check_new_events(engine, NEW_EVENTS, "new events (CLI)"))
        result["new_events_cli"] = {**incremental.as_dict(), "events": NEW_EVENTS}

        log(f"{kind}: {NEW_EVENTS:,} other new events in-process")
        elapsed, outcome = timed(lambda: ingest_files(engine, [context.batch_in_process]))
        checks.extend(check_new_events(engine, 2 * NEW_EVENTS, "new events (in-process)"))
        counts = getattr(outcome, "counts", {}).get("subscription_events")
        result["new_events_in_process"] = {
            "seconds": elapsed,
            "events": NEW_EVENTS,
            "reported_seconds": getattr(outcome, "seconds", None),
            "inserted": getattr(counts, "inserted", None),
        }
    finally:
        engine.dispose()

    inserted = result["new_events_in_process"]["inserted"]
    if inserted != NEW_EVENTS:
        warnings.append(f"in-process ingest of {NEW_EVENTS} new events reports {inserted} inserted")
    result["checks_failed"] = checks
    result["product_warnings"] = warnings
    for problem in checks:
        log(f"{kind}: CHECK FAILED: {problem}")
    for warning in warnings:
        log(f"{kind}: product warning: {warning}")
    return result


def stored_events(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            count = connection.execute(text("SELECT count(*) FROM subscription_events"))
            return int(count.scalar_one())
    finally:
        engine.dispose()


def find_seconds(payload: object) -> float | None:
    """The ingest's own timing, if its JSON reports one under a key naming seconds."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            if "second" in key and isinstance(value, int | float):
                return float(value)
            found = find_seconds(value)
            if found is not None:
                return found
    return None


def max_peak(runs: list[ChildRun]) -> int | None:
    peaks = [run.peak_rss_kb for run in runs if run.peak_rss_kb is not None]
    return max(peaks) if peaks else None


def check_metric_rows(rows: list[dict[str, Any]], first: str, last: str) -> list[str]:
    problems = []
    if len(rows) != METRICS_MONTHS:
        problems.append(f"metrics: {len(rows)} rows, expected {METRICS_MONTHS}")
    if rows and (rows[0]["period"], rows[-1]["period"]) != (first, last):
        problems.append(f"metrics: periods {rows[0]['period']}..{rows[-1]['period']}")
    for row in rows:
        if row["net_new_mrr"] != row["mrr_end"] - row["mrr_start"]:
            problems.append(f"metrics {row['period']}: net_new_mrr != mrr_end - mrr_start")
    return problems


def check_new_events(engine: Engine, expected: int, batch: str) -> list[str]:
    """The batch just ingested is in the database (a silent no-op would flatter the timing)."""
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM subscription_events WHERE event_id LIKE 'bench_evt_%'")
        ).scalar_one()
    if count != expected:
        return [f"{batch}: {count} bench events stored, expected {expected}"]
    return []


# --------------------------------------------------------------------------- the table


@dataclass
class Line:
    database: str
    measurement: str
    value: float | None
    unit: str
    target: str
    met: bool | None

    def cells(self) -> list[str]:
        if self.value is None:
            shown = "n/a"
        elif self.unit in ("events/s", "events", "MB"):
            shown = f"{self.value:,.0f}"
        else:
            shown = f"{self.value:.3f}"
        met = "-" if self.met is None else ("yes" if self.met else "no")
        return [self.database, self.measurement, shown, self.unit, self.target, met]


def megabytes(kb: int | None) -> float | None:
    return None if kb is None else kb * 1024 / 1e6


def below(value: float | None, limit: float) -> bool | None:
    return None if value is None else value < limit


def table_lines(demo: dict[str, Any], results: dict[str, dict[str, Any]]) -> list[Line]:
    memory_target = f"< {TARGET_PEAK_MB:,.0f}"
    lines = [
        Line("files", "demo generation (CLI)", demo["seconds"], "s", "-", None),
        Line("files", "subscription events generated", demo["events"], "events", "-", None),
        Line(
            "files",
            "CLI start-up (execmetrics --help), median",
            demo["cli_startup_seconds"]["median"],
            "s",
            "-",
            None,
        ),
        Line(
            "files",
            "demo generation peak memory",
            megabytes(demo["peak_rss_kb"]),
            "MB",
            memory_target,
            below(megabytes(demo["peak_rss_kb"]), TARGET_PEAK_MB),
        ),
    ]
    for kind, result in results.items():
        if "error" in result:
            lines.append(Line(kind, f"FAILED: {result['error'][:60]}", None, "-", "-", False))
            continue
        rate = result["ingest"]["events_per_second"]
        target_rate = TARGET_EVENTS_PER_SECOND[kind]
        ingest_peak = megabytes(result["ingest"]["peak_rss_kb"])
        metrics_peak = megabytes(result["metrics_cli"]["peak_rss_kb"])
        new_peak = megabytes(result["new_events_cli"]["peak_rss_kb"])
        lines += [
            Line(kind, "full ingest (CLI wall)", result["ingest"]["seconds"], "s", "-", None),
            Line(
                kind,
                "full ingest throughput",
                rate,
                "events/s",
                f">= {target_rate:,.0f}",
                rate >= target_rate,
            ),
            Line(
                kind,
                "full ingest peak memory",
                ingest_peak,
                "MB",
                memory_target,
                below(ingest_peak, TARGET_PEAK_MB),
            ),
            Line(
                kind,
                f"metrics {METRICS_MONTHS} months, CLI median",
                result["metrics_cli"]["median"],
                "s",
                f"< {TARGET_METRICS_SECONDS:g}",
                below(result["metrics_cli"]["median"], TARGET_METRICS_SECONDS),
            ),
            Line(
                kind,
                f"metrics {METRICS_MONTHS} months, CLI min",
                result["metrics_cli"]["min"],
                "s",
                f"< {TARGET_METRICS_SECONDS:g}",
                below(result["metrics_cli"]["min"], TARGET_METRICS_SECONDS),
            ),
            Line(
                kind,
                "metrics CLI peak memory",
                metrics_peak,
                "MB",
                memory_target,
                below(metrics_peak, TARGET_PEAK_MB),
            ),
            Line(
                kind,
                f"metrics {METRICS_MONTHS} months, in-process median",
                result["metrics_in_process"]["median"],
                "s",
                f"< {TARGET_METRICS_SECONDS:g}",
                below(result["metrics_in_process"]["median"], TARGET_METRICS_SECONDS),
            ),
            Line(
                kind,
                "metrics --by segment, in-process median",
                result["metrics_by_segment_in_process"]["median"],
                "s",
                "-",
                None,
            ),
            Line(
                kind,
                "cohorts, in-process median",
                result["cohorts_in_process"]["median"],
                "s",
                "-",
                None,
            ),
            Line(
                kind,
                f"{NEW_EVENTS:,} new events, CLI wall",
                result["new_events_cli"]["seconds"],
                "s",
                f"< {TARGET_NEW_EVENTS_SECONDS:g}",
                below(result["new_events_cli"]["seconds"], TARGET_NEW_EVENTS_SECONDS),
            ),
            Line(
                kind,
                f"{NEW_EVENTS:,} new events CLI peak memory",
                new_peak,
                "MB",
                memory_target,
                below(new_peak, TARGET_PEAK_MB),
            ),
            Line(
                kind,
                f"{NEW_EVENTS:,} other new events, in-process",
                result["new_events_in_process"]["seconds"],
                "s",
                f"< {TARGET_NEW_EVENTS_SECONDS:g}",
                below(result["new_events_in_process"]["seconds"], TARGET_NEW_EVENTS_SECONDS),
            ),
        ]
        if result["checks_failed"]:
            lines.append(
                Line(
                    kind,
                    f"sanity checks failed: {len(result['checks_failed'])}",
                    None,
                    "-",
                    "0",
                    False,
                )
            )
    return lines


def markdown(lines: list[Line]) -> str:
    header = ["database", "measurement", "value", "unit", "target", "met"]
    rows = [header, ["---"] * len(header), *(line.cells() for line in lines)]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


# --------------------------------------------------------------------------- main


def reproduce_command(arguments: argparse.Namespace) -> str:
    return (
        ".venv/bin/python bench/revenue_engine.py"
        f" --customers {arguments.customers} --months {arguments.months}"
        f" --seed {arguments.seed} --end-month {arguments.end_month}"
        f" --databases {','.join(arguments.databases)} --repeat {arguments.repeat}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    keep = arguments.work_dir is not None
    work_dir = (
        arguments.work_dir
        if arguments.work_dir is not None
        else Path(tempfile.mkdtemp(prefix="execmetrics-bench-"))
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        return run(arguments, work_dir, started_at)
    finally:
        if not keep:
            shutil.rmtree(work_dir, ignore_errors=True)


def run(arguments: argparse.Namespace, work_dir: Path, started_at: str) -> int:
    files = work_dir / "demo"
    if files.exists():
        shutil.rmtree(files)
    log(
        f"generating the demo company: {arguments.customers:,} customers, {arguments.months} "
        f"months, seed {arguments.seed}, ending {arguments.end_month}"
    )
    demo_run = run_child(
        [
            "demo",
            "--customers",
            str(arguments.customers),
            "--months",
            str(arguments.months),
            "--seed",
            str(arguments.seed),
            "--end",
            arguments.end_month,
            "--out",
            str(files),
        ]
    )
    events = count_lines(files / "subscription_events.csv") - 1
    demo = {**demo_run.as_dict(), "events": events, "customers": arguments.customers}
    log(f"{events:,} subscription events in {demo_run.seconds:.1f} s")

    # What every CLI figure pays before touching the database: read the CLI timings with it.
    startup = summary([run_child(["--help"]).seconds for _ in range(arguments.repeat)])
    demo["cli_startup_seconds"] = startup

    customers = customer_ids(files / "customers.csv")
    batches = work_dir / "new_events"
    if batches.exists():
        shutil.rmtree(batches)
    template = files / "subscription_events.csv"
    context = Context(
        arguments=arguments,
        files=files,
        events=events,
        customers=customers,
        batch_cli=write_new_events(
            template, batches / "cli", customers, 1, arguments.end_month, arguments.seed
        ),
        batch_in_process=write_new_events(
            template,
            batches / "in_process",
            customers,
            NEW_EVENTS + 1,
            arguments.end_month,
            arguments.seed,
        ),
        first=shift_month(arguments.end_month, -(METRICS_MONTHS - 1)),
        last=arguments.end_month,
    )

    results: dict[str, dict[str, Any]] = {}
    postgres_version: str | None = None
    for kind in arguments.databases:
        try:
            with fresh_database(kind, arguments.postgres_url, work_dir) as (url, version):
                postgres_version = version or postgres_version
                results[kind] = {"server_version": version, **bench_database(kind, url, context)}
        except Exception as error:  # one database failing must not hide the other's figures
            log(f"{kind}: FAILED: {error}")
            results[kind] = {
                "error": str(error).splitlines()[0] if str(error) else repr(error),
                "detail": str(error),
            }

    lines = table_lines(demo, results)
    document = {
        "benchmark": "revenue_engine",
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": reproduce_command(arguments),
        "parameters": {
            "customers": arguments.customers,
            "months": arguments.months,
            "seed": arguments.seed,
            "end_month": arguments.end_month,
            "databases": arguments.databases,
            "repeat": arguments.repeat,
            "metrics_range": [context.first, context.last],
            "new_events": NEW_EVENTS,
            "postgres_server": make_url(arguments.postgres_url).render_as_string(
                hide_password=True
            ),
            "peak_memory_method": "/usr/bin/time %M" if GNU_TIME.exists() else "/proc VmHWM",
        },
        "machine": machine_info(postgres_version),
        "demo": demo,
        "results": results,
        "table": [line.__dict__ for line in lines],
    }
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    log(f"results written to {arguments.out}")

    sys.stdout.write(markdown(lines) + "\n")
    failed = any("error" in result or result["checks_failed"] for result in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""API server benchmark: GET /api/v1/summary and a 24-month GET /api/v1/metrics under load.

Run with `make bench-api` or `.venv/bin/python bench/api_server.py --help`. For each database
it loads the demo company, starts `execmetrics serve --workers 2` with Redis (shared rate
limits and document cache), and measures on loopback:

- cold: a document in no cache, asked for by 20 clients at once of a server that is running
  (each run asks for a time zone not asked for before, so the document is computed: the same
  work as after an ingestion), --cold-runs times; and by one client alone;
- cold start: the same right after the server started with the document cache emptied;
- repeated: wrk with 20 connections for --seconds per route: p50, p95, p99 and throughput.

The load generator runs on the same 2-core machine as the server, so it takes CPU from it.
stdout carries the Markdown table; raw figures and the machine go to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy.engine import make_url

from execmetrics.metrics.periods import add_months
from revenue_engine import DEFAULT_POSTGRES_URL, fresh_database, log, machine_info

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "api_server.json"
CLI = str(Path(sys.executable).parent / "execmetrics")
REDIS_URL = "redis://127.0.0.1:6379/0"
TARGET_COLD_MS = 200.0
TARGET_REPEATED_MS = 20.0
WRK_SCRIPT = """
wrk.headers["Authorization"] = "Bearer {token}"
done = function(summary, latency, requests)
  io.write(string.format("BENCH %d %d %f %f %f %d\\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--end-month", default="2025-12")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args()


def run(command: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_url(kind: str, url: str) -> str:
    """The server connects to PostgreSQL as the application role, under row-level security."""
    if kind == "sqlite":
        return url
    return (
        make_url(url)
        .set(username="execmetrics_app", password=None)
        .render_as_string(hide_password=False)
    )


@contextmanager
def serving(url: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "EXECMETRICS_DATABASE_URL": url,
        "EXECMETRICS_REDIS_URL": REDIS_URL,
        "EXECMETRICS_RATE_LIMIT_ANALYST": str(10**9),
    }
    server = subprocess.Popen(
        [CLI, "serve", "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(20)


def forget_documents() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter("execmetrics:doc:*"))
    if keys:
        client.delete(*keys)


async def burst(url: str, token: str, clients: int) -> list[float]:
    """`clients` requests at once; the milliseconds each took."""
    async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {token}"}) as http:

        async def one() -> float:
            started = time.perf_counter()
            response = await http.get(url)
            response.raise_for_status()
            return (time.perf_counter() - started) * 1000

        return list(await asyncio.gather(*(one() for _ in range(clients))))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# Each cold run asks for the document in a time zone not asked for before: a document that
# no cache holds, computed from the ledger the server keeps in memory.
COLD_ZONES = (
    "Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "Europe/Paris",
    "America/Los_Angeles", "Asia/Kolkata", "Africa/Nairobi", "America/Sao_Paulo",
    "Pacific/Auckland", "Europe/Berlin", "Asia/Singapore",
)  # fmt: skip


def in_zone(path: str, zone: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}tz={zone}"


def cold(base: str, path: str, token: str, clients: int, runs: int) -> dict[str, Any]:
    """Documents in no cache, asked for of a running server."""
    zones = iter(COLD_ZONES)
    together: list[float] = []
    alone: list[float] = []
    for _ in range(runs):
        together.extend(asyncio.run(burst(base + in_zone(path, next(zones)), token, clients)))
        alone.extend(asyncio.run(burst(base + in_zone(path, next(zones)), token, 1)))
    return summarise(together, alone)


def cold_start(url: str, path: str, token: str, clients: int, runs: int) -> dict[str, Any]:
    """Documents asked for right after the server started with the document cache emptied."""
    together: list[float] = []
    alone: list[float] = []
    for _ in range(runs):
        for waves, sink in ((clients, together), (1, alone)):
            forget_documents()
            with serving(url) as base:
                sink.extend(asyncio.run(burst(base + path, token, waves)))
    return summarise(together, alone)


def summarise(together: list[float], alone: list[float]) -> dict[str, Any]:
    return {
        "p95_ms": percentile(together, 0.95),
        "median_ms": statistics.median(together),
        "alone_median_ms": statistics.median(alone),
        "samples": together,
        "alone_samples": alone,
    }


def repeated(base: str, path: str, token: str, clients: int, seconds: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.replace("{token}", token))
    try:
        asyncio.run(burst(base + path, token, 1))  # the document is cached before timing
        output = run(
            ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "-s", script.name, base + path]
        )
    finally:
        os.unlink(script.name)
    match = re.search(r"^BENCH (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)$", output, re.M)
    if match is None:
        raise SystemExit(f"wrk printed no figures:\n{output}")
    requests, micros, p50, p95, p99, errors = match.groups()
    return {
        "requests": int(requests),
        "per_second": int(requests) / (int(micros) / 1e6),
        "p50_ms": float(p50) / 1000,
        "p95_ms": float(p95) / 1000,
        "p99_ms": float(p99) / 1000,
        "errors": int(errors),
    }


def bench_database(kind: str, args: argparse.Namespace, files: Path, work: Path) -> dict[str, Any]:
    with fresh_database(kind, args.postgres_url, work) as (url, version):
        log(f"{kind}: ingesting the demo company")
        run([CLI, "ingest", str(files), "--db", url])
        token = run([CLI, "tokens", "create", "--name", "bench", "--role", "analyst", "--db", url])
        token = token.strip()
        last = date.fromisoformat(args.end_month + "-01")
        first = add_months(last, -23)
        routes = {
            "summary": "/api/v1/summary",
            "metrics_24_months": f"/api/v1/metrics?from={first:%Y-%m}&to={last:%Y-%m}",
        }
        served = server_url(kind, url)
        result: dict[str, Any] = {"postgresql_version": version, "routes": {}}
        for name, path in routes.items():
            log(f"{kind}: {name} cold start")
            figures: dict[str, Any] = {
                "cold_start": cold_start(served, path, token, args.clients, args.cold_runs)
            }
            with serving(served) as base:
                asyncio.run(burst(base + path, token, args.clients))  # the server has run a while
                log(f"{kind}: {name} cold")
                figures["cold"] = cold(base, path, token, args.clients, args.cold_runs)
                log(f"{kind}: {name} repeated")
                figures["repeated"] = repeated(base, path, token, args.clients, args.seconds)
            result["routes"][name] = figures
        return result


def table(results: dict[str, Any], clients: int) -> str:
    lines = [
        f"| route | database | cold p95, {clients} at once | cold, one alone (median) "
        f"| cold start p95, {clients} at once | repeated p50 / p95 / p99 "
        f"| repeated throughput | target p95 cold / repeated |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, result in results.items():
        for name, figures in result["routes"].items():
            c, r, s = figures["cold"], figures["repeated"], figures["cold_start"]
            lines.append(
                f"| {name} | {kind} | {c['p95_ms']:.0f} ms | {c['alone_median_ms']:.0f} ms "
                f"| {s['p95_ms']:.0f} ms "
                f"| {r['p50_ms']:.1f} / {r['p95_ms']:.1f} / {r['p99_ms']:.1f} ms "
                f"| {r['per_second']:.0f} req/s "
                f"| {TARGET_COLD_MS:.0f} / {TARGET_REPEATED_MS:.0f} ms |"
            )
    return "\n".join(lines)


def main() -> int:
    args = parse_arguments()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="execmetrics-bench-api-"))
    try:
        files = work / "demo"
        log(f"generating the demo company ({args.customers:,} customers)")
        run([CLI, "demo", "--customers", str(args.customers), "--months", "36", "--seed", "7",
             "--end", args.end_month, "--out", str(files)])  # fmt: skip
        results = {
            kind: bench_database(kind, args, files, work) for kind in args.databases.split(",")
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    versions = [r["postgresql_version"] for r in results.values() if r["postgresql_version"]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"machine": machine_info(versions[0] if versions else None), "arguments": vars(args)
             | {"out": str(args.out)}, "results": results},
            indent=2, default=str,
        )
    )  # fmt: skip
    print(table(results, args.clients))
    return 0


if __name__ == "__main__":
    sys.exit(main())

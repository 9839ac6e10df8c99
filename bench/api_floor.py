"""The least a cached, authenticated, rate-limited and audited API read costs on this machine.

A lower bound for the repeated figures of bench/api_server.py: a bare ASGI application (no
framework, no middleware, one worker thread hop) that does only what every such request must,
with execmetrics' own pieces: look the API token up, count the request in the Redis rate
limit, read the data version, answer with a document held in memory and, with --audit,
append the request to the hash-chained audit trail and wait for its commit (group commit,
as the server does). `uvicorn --workers 2` serves it on loopback; wrk measures it with 20
connections, as bench/api_server.py does, with and without the audit record.

    .venv/bin/python bench/api_floor.py [--seconds 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from anyio import to_thread
from starlette.types import Receive, Scope, Send

from api_server import free_port, repeated
from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_token, token_identity
from execmetrics.audit.chain import AuditEntry
from execmetrics.audit.writer import AuditWriter
from execmetrics.metrics.cache import data_version
from execmetrics.ratelimit import make_limiter
from execmetrics.store.database import open_database

REDIS_URL = "redis://127.0.0.1:6379/0"
CLIENTS = 20
DOCUMENT = b'{"rows": [' + b", ".join([b'{"mrr_end": 123456789}'] * 100) + b"]}"


class FloorApp:
    """Every request is GET /document with a bearer token; nothing else is served."""

    def __init__(self) -> None:
        self.engine = open_database(os.environ["FLOOR_DATABASE_URL"])
        self.limiter = make_limiter(REDIS_URL)
        self.audit = AuditWriter(self.engine) if os.environ["FLOOR_AUDIT"] == "1" else None

    def checks(self, token: str) -> str:
        with self.engine.begin() as connection:
            identity = token_identity(connection, token)
            if identity is None:
                raise PermissionError("unknown token")
            data_version(connection)
        self.limiter.check_request(identity.label, 10**9)
        return identity.label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
        label = await to_thread.run_sync(self.checks, token)
        if self.audit is not None:
            entry = AuditEntry(
                request_id=uuid.uuid4().hex, identity=label, role=Role.ANALYST.value,
                action="GET /document", resource=scope["path"], parameters={},
                client="127.0.0.1", user_agent=headers.get(b"user-agent", b"").decode(),
                outcome="200",
            )  # fmt: skip
            await asyncio.wrap_future(self.audit.submit(entry))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": DOCUMENT})


def app() -> FloorApp:
    return FloorApp()


def measure(url: str, token: str, audit: bool, seconds: int) -> dict[str, Any]:
    env = {**os.environ, "FLOOR_DATABASE_URL": url, "FLOOR_AUDIT": "1" if audit else "0"}
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api_floor:app", "--factory", "--app-dir",
         str(Path(__file__).parent), "--workers", "2", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(base + "/document", headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        return repeated(base, "/document", token, CLIENTS, seconds)
    finally:
        server.terminate()
        server.wait(20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="execmetrics-floor-") as work:
        url = f"sqlite:///{work}/floor.db"
        with open_database(url).begin() as connection:
            token, _ = create_token(connection, "floor", Role.ANALYST, 3600 * 10**6)
        results: dict[str, Any] = {}
        for audit in (False, True):
            runs = [measure(url, token, audit, args.seconds) for _ in range(args.runs)]
            results["with audit" if audit else "without audit"] = {
                key: statistics.median(run[key] for run in runs)
                for key in ("p50_ms", "p95_ms", "p99_ms", "per_second")
            }
    print("| request | p50 / p95 / p99 | throughput |\n|---|---|---|")
    for name, figures in results.items():
        print(
            f"| {name} | {figures['p50_ms']:.1f} / {figures['p95_ms']:.1f} "
            f"/ {figures['p99_ms']:.1f} ms | {figures['per_second']:.0f} req/s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

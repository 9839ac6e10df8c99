"""The forecast evaluation on public series (bench/forecast_eval.py) meets its criteria:
the chosen model beats the seasonal naive forecast on each held-out year, and the 95%
intervals hold at least 85% of the held-out values. The benchmark of one forecast of an
ingested company (bench/forecast_demo.py) runs and checks itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine
from tests.builders import ingest
from tests.metrics.scenarios import steady_churn_events

ROOT = Path(__file__).resolve().parents[2]


def test_the_chosen_models_beat_seasonal_naive_on_airpassengers_and_wineind(
    tmp_path: Path,
) -> None:
    out = tmp_path / "forecast_eval.json"
    finished = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "forecast_eval.py"),
            "--series", "AirPassengers,wineind", "--repeat", "1", "--out", str(out),
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    document = json.loads(out.read_text())
    assert document["criteria_met"] is True
    results = {r["series"]: r for r in document["results"]}
    assert set(results) == {"AirPassengers", "wineind"}
    for result in results.values():
        assert result["mase"] < result["seasonal_naive_mase"]
        assert result["held_out"] == 12
    assert sum(r["covered_95"] for r in results.values()) >= 0.85 * 24
    assert "| AirPassengers (pmdarima, 144) |" in finished.stdout


def test_an_unknown_series_is_refused(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "forecast_eval.py"), "--series", "nile",
         "--out", str(tmp_path / "x.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert finished.returncode == 2
    assert "--series: unknown nile" in finished.stderr


def test_the_demo_forecast_benchmark_times_the_command_and_the_server(engine: Engine) -> None:
    ingest(engine, events=steady_churn_events())
    finished = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "forecast_demo.py"), "--db",
         engine.url.render_as_string(hide_password=False), "--repeat", "1", "--horizon", "3"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    rows = [line for line in finished.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 6  # the header and five measurements
    assert "forecast 3 months ahead with its backtest" in finished.stdout

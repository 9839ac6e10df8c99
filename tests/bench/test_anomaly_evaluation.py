"""The detectors on the whole Numenta Anomaly Benchmark (bench/anomaly_eval.py): the robust
detector beats the published Windowed Gaussian score of 39.6."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_robust_detector_beats_the_windowed_gaussian_on_nab(
    tmp_path: Path, shared_data: Path
) -> None:
    out = tmp_path / "anomaly_eval.json"
    finished = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "anomaly_eval.py"),
         "--nab", str(shared_data / "nab"), "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    document = json.loads(out.read_text())
    assert len(document["files"]) == 58
    results = {r["method"]: r for r in document["results"]}
    assert results["robust_seasonal"]["score"] > 39.6
    assert results["robust_seasonal"]["score"] > results["rolling_zscore"]["score"]
    assert "| robust_seasonal |" in finished.stdout

"""The churn models: cross-validated on data with a known signal, and on the real IBM Telco
customers, where logistic regression is published at about 0.845 ROC AUC."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from execmetrics.analytics.churn_model import (
    MODELS,
    ChurnModelError,
    cross_validate,
    evaluation_document,
)
from execmetrics.analytics.feature_table import FeatureTable
from execmetrics.cli import app as cli


def synthetic(rows: int, seed: int = 1) -> FeatureTable:
    """Churn driven by falling logins and urgent tickets, and a plan that does not matter."""
    rng = np.random.default_rng(seed)
    logins = rng.poisson(20, rows).astype(float)
    decline = rng.uniform(-1, 1, rows)
    tickets = rng.poisson(1, rows).astype(float)
    logit = -1.0 - 2.5 * decline + 0.8 * tickets - 0.05 * logins
    label = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    plans = [str(p) for p in rng.choice(["starter", "pro", "venue"], rows)]
    return FeatureTable(
        ids=[f"c{i}" for i in range(rows)],
        numeric={"logins": logins, "decline": decline, "tickets": tickets},
        categorical={"plan": plans},
        label=label,
    )


def test_both_models_learn_a_known_signal_and_report_every_fold() -> None:
    evaluation = cross_validate(synthetic(1500), folds=4, seed=3)
    assert (evaluation.rows, evaluation.folds) == (1500, 4)
    assert evaluation.churned == int(synthetic(1500).label.sum())
    for model in MODELS:
        result = evaluation.models[model]
        assert len(result.folds) == 4
        assert result.mean("roc_auc") > 0.75  # the signal is strong
        assert 0 < result.mean("brier") < 0.25  # better than a coin
    document = evaluation_document(evaluation)
    assert document["chosen"] == evaluation.chosen in MODELS
    assert document["features"] == {
        "numeric": ["logins", "decline", "tickets"], "categorical": ["plan"]
    }  # fmt: skip


def test_the_same_data_and_seed_give_the_same_figures() -> None:
    table = synthetic(400, seed=5)
    first = evaluation_document(cross_validate(table, folds=3, seed=1))
    assert first == evaluation_document(cross_validate(table, folds=3, seed=1))


def test_too_few_churners_for_the_folds_is_refused() -> None:
    table = synthetic(60)
    table.label[:] = 0
    table.label[:8] = 1
    with pytest.raises(ChurnModelError, match="8 churned and 52 retained rows; each needs at"):
        cross_validate(table, folds=5)
    with pytest.raises(ChurnModelError, match="folds: expected 2 or more, got 1"):
        cross_validate(synthetic(100), folds=1)


def test_on_the_ibm_telco_customers_the_roc_auc_reaches_0_84(shared_data: Path) -> None:
    telco = shared_data / "telco-churn" / "Telco-Customer-Churn.csv"
    result = CliRunner().invoke(
        cli,
        [
            "churn", "evaluate", "--features", str(telco),
            "--label", "Churn", "--id", "customerID", "--format", "json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert (document["rows"], document["churned"], document["folds"]) == (7043, 1869, 5)
    assert "TotalCharges" in document["features"]["numeric"]  # blanks in 11 rows
    assert "Contract" in document["features"]["categorical"]
    assert document["models"]["logistic_regression"]["roc_auc"] >= 0.84
    assert document["models"][document["chosen"]]["roc_auc"] >= 0.84


def test_the_command_names_a_bad_column_and_a_bad_format(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("id,x,churned\na,1,no\nb,2,yes\n", encoding="utf-8")
    missing = CliRunner().invoke(
        cli, ["churn", "evaluate", "--features", str(path), "--label", "left", "--id", "id"]
    )
    assert missing.exit_code == 2
    assert "--label: no column named 'left'" in " ".join(missing.output.split())
    table = CliRunner().invoke(
        cli, ["churn", "evaluate", "--features", str(path), "--label", "churned", "--id", "id",
              "--format", "csv"],
    )  # fmt: skip
    assert table.exit_code == 2 and "--format: expected one of table, json" in table.output

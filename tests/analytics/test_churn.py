"""Training on a time split, the weighted score when history is short, factors in words,
storing models and scores, and the daily job."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.analytics.test_churn_features import AS_OF
from tests.analytics.test_churn_features import company as company
from typer.testing import CliRunner

from execmetrics.analytics.churn import (
    WEIGHTED,
    ChurnModel,
    factor_phrase,
    score_customers,
    train_churn_model,
)
from execmetrics.analytics.churn_model import MODELS
from execmetrics.analytics.churn_store import latest_model, run_scores, save_model, save_scores
from execmetrics.analytics.churn_weights import DEFAULT_WEIGHTS, WeightsError, parse_weights
from execmetrics.analytics.jobs import run_daily_analytics, run_if_due
from execmetrics.cli import app as cli
from execmetrics.demo import DemoSpec, write_demo
from execmetrics.ingest.service import ingest_files
from execmetrics.store.lease import take_lease
from execmetrics.timeutil import date_to_micros


def test_with_too_little_history_the_weighted_score_is_used_and_says_why(company: Engine) -> None:
    with company.connect() as connection:
        model = train_churn_model(connection, AS_OF)
    assert model.method == WEIGHTED and model.pipeline is None
    assert model.reason.startswith("too little labelled history for a model (0 churned")
    assert model.weights == DEFAULT_WEIGHTS


def test_scores_come_with_their_factors_in_words(company: Engine) -> None:
    model = ChurnModel(WEIGHTED, 60, AS_OF, DEFAULT_WEIGHTS, "test")
    with company.connect() as connection:
        risk = score_customers(connection, model, AS_OF, "GBP")
    assert risk.ids == ["c1", "c2", "c4"]
    # c1: tickets weigh most (20 x 1.0), then usage (25 x 1/3), then contraction (15 x 0.41).
    assert risk.factors[0] == [
        "1 urgent or high-priority ticket in 90 days",
        "usage down 33% over 30 days",
        "MRR down GBP 20 in 90 days",
    ]
    assert risk.factors[1] == ["no login in the last year", "no feature use in 30 days",
                               "customer for 31 days"]  # fmt: skip


@pytest.mark.parametrize(
    ("group", "numeric", "expected"),
    [
        ("login", {"days_since_login": 12, "login_trend": 0.0}, "no login for 12 days"),
        ("login", {"days_since_login": 2, "login_trend": -0.7}, "logins down 70% over 30 days"),
        ("login", {"days_since_login": 2, "login_trend": -0.1}, None),
        ("tickets", {"urgent_tickets_90d": 3, "tickets_90d": 4, "open_tickets": 0},
         "3 urgent or high-priority tickets in 90 days"),
        ("tickets", {"urgent_tickets_90d": 0, "tickets_90d": 1, "open_tickets": 1},
         "1 open ticket"),
        ("tickets", {"urgent_tickets_90d": 0, "tickets_90d": 1, "open_tickets": 0}, None),
        ("contraction", {"contraction_90d": 0}, None),
    ],
)  # fmt: skip
def test_a_factor_is_put_in_words_only_when_it_is_a_warning_sign(
    group: str, numeric: dict[str, float], expected: str | None
) -> None:
    assert factor_phrase(group, numeric, {}, "GBP") == expected


def test_weights_are_parsed_and_bad_ones_named() -> None:
    assert parse_weights("login=50,tenure=50") == {"login": 50, "usage": 0, "tickets": 0,
                                                   "contraction": 0, "tenure": 50}  # fmt: skip
    with pytest.raises(WeightsError, match="got 'logins=5'"):
        parse_weights("logins=5")
    with pytest.raises(WeightsError, match="at least one weight must be above 0"):
        parse_weights("login=0")


def test_models_and_scores_are_stored_with_their_version(company: Engine) -> None:
    model = ChurnModel(WEIGHTED, 60, AS_OF, DEFAULT_WEIGHTS, "short history")
    with company.begin() as connection:
        version = save_model(connection, model, date_to_micros(AS_OF))
        risk = score_customers(connection, model, AS_OF, "GBP")
        run = save_scores(connection, version, risk, date_to_micros(AS_OF))
        stored = latest_model(connection)
        total, rows = run_scores(connection, run, limit=2)
    assert (
        stored is not None and stored.version == version and stored.model.reason == "short history"
    )
    # c2 and c4 have no activity at all; c2 is the newer customer.
    assert total == 3 and [row["customer_id"] for row in rows] == ["c2", "c4"]
    assert rows[0]["mrr"] == 30000 and rows[0]["factors"][0] == "no login in the last year"


def test_the_daily_job_retrains_weekly_and_scores_once_a_day(company: Engine) -> None:
    now = date_to_micros(AS_OF)
    with company.begin() as connection:
        first = run_daily_analytics(connection, AS_OF, now, 60, DEFAULT_WEIGHTS)
        again = run_daily_analytics(connection, AS_OF, now, 60, DEFAULT_WEIGHTS)
        later = date(2025, 6, 8)
        week = run_daily_analytics(connection, later, date_to_micros(later), 60, DEFAULT_WEIGHTS)
    assert (first.retrained, first.customers, first.run_id is not None) == (True, 3, True)
    assert (again.retrained, again.run_id, again.model_version) == (
        False,
        None,
        first.model_version,
    )
    assert week.retrained and week.model_version == first.model_version + 1


def test_on_the_demo_company_a_model_beats_the_weighted_score_on_a_time_split(
    engine: Engine, tmp_path: Path
) -> None:
    write_demo(DemoSpec(customers=2000, months=24, seed=5, end_month="2026-10"), tmp_path)
    ingest_files(engine, [tmp_path])
    with engine.connect() as connection:
        model = train_churn_model(connection, date(2026, 11, 1))
    judged = model.evaluation["test"]
    assert model.method in MODELS
    assert judged[model.method]["roc_auc"] > judged[WEIGHTED]["roc_auc"] + 0.05
    assert model.evaluation["split"]["test_snapshot"] == "2026-09-02"


def test_the_churn_commands_score_store_and_refuse_bad_options(company: Engine) -> None:
    url = company.url.render_as_string(hide_password=False)
    runner = CliRunner()
    scored = runner.invoke(cli, ["churn", "score", "--db", url, "--as-of", "2025-06-01",
                                 "--top", "1", "--format", "json"])  # fmt: skip
    assert scored.exit_code == 0, scored.output
    document = json.loads(scored.output)
    assert (document["method"], document["customers"], document["model_version"]) == (
        WEIGHTED, 3, 1,
    )  # fmt: skip
    assert document["top"][0]["customer_id"] == "c2"
    bad = runner.invoke(cli, ["churn", "train", "--db", url, "--weights", "logins=3"])
    assert bad.exit_code == 2 and "--weights: expected name=number pairs" in bad.output
    day = runner.invoke(cli, ["churn", "score", "--db", url, "--as-of", "June"])
    assert day.exit_code == 2 and "--as-of: expected a date YYYY-MM-DD, got 'June'" in day.output
    job = runner.invoke(cli, ["daily-analytics", "--db", url, "--as-of", "2025-06-01"])
    assert job.exit_code == 0 and "kept; already scored today" in job.output


def test_server_processes_run_the_job_once_a_day_under_a_lease(company: Engine) -> None:
    now = date_to_micros(AS_OF) + 10 * 3600 * 10**6
    first = run_if_due(company, "server-a", 60, DEFAULT_WEIGHTS, now)
    assert first is not None and (first.retrained, first.customers) == (True, 3)
    assert run_if_due(company, "server-b", 60, DEFAULT_WEIGHTS, now) is None  # done today
    tomorrow = now + 86_400 * 10**6
    assert take_lease(company, "analytics", "server-b", 3600)
    assert run_if_due(company, "server-a", 60, DEFAULT_WEIGHTS, tomorrow) is None  # b holds it
    second = run_if_due(company, "server-b", 60, DEFAULT_WEIGHTS, tomorrow)
    assert second is not None and (second.retrained, second.run_id) == (False, first.run_id + 1)

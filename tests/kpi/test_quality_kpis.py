"""Quality KPIs: the scores of the newest stored data quality report as KPI values, for the
current period only."""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from tests.builders import customer, ingest, start
from tests.builders import kpi_definition as kpi
from typer.testing import CliRunner

from execmetrics.alerts.engine import evaluate_rules
from execmetrics.alerts.messages import AlertContext
from execmetrics.alerts.scheduler import Scheduler, SchedulerConfig
from execmetrics.alerts.service import list_instances
from execmetrics.analytics.quality import (
    DATASET_DIMENSIONS,
    DEFAULT_FRESHNESS_US,
    quality_report,
)
from execmetrics.analytics.quality_store import latest_quality, save_quality
from execmetrics.as_code import apply_declared, parse_declared
from execmetrics.cli import app as cli
from execmetrics.kpi.config import starter_kpis
from execmetrics.kpi.definitions import QUALITY_METRICS, KpiDefinition
from execmetrics.kpi.evaluation import (
    KpiValue,
    evaluate_kpi_history,
    kpi_values,
    record_evaluations,
    value_history,
)
from execmetrics.kpi.service import apply_kpis
from execmetrics.metrics.cache import data_version
from execmetrics.notify.registry import Sealer
from execmetrics.timeutil import now_micros, parse_timestamp

F = Fraction
JUNE_1 = date(2024, 6, 1)
# Measured at the end of 1 June, the newest event is three days old, one and a half times
# the two-day limit; at the end of 2 June, four days old.
END_OF_JUNE_1 = parse_timestamp("2024-06-02T00:00:00Z")
END_OF_JUNE_2 = parse_timestamp("2024-06-03T00:00:00Z")


def quality(name: str, metric: str, **fields: Any) -> KpiDefinition:
    defaults = {"category": "quality", "unit": "score", "period": "month_to_date"}
    return kpi(name, metric=metric, **defaults | fields)


def measured(engine: Engine, at: int) -> int:
    """A quality report measured at `at` and stored, as the analytics job stores them."""
    with engine.begin() as connection:
        report = quality_report(connection, at)
        return save_quality(connection, report, at, data_version(connection), DEFAULT_FRESHNESS_US)


def company(engine: Engine) -> None:
    """Four customers: segment given for two, country for all four, source for one (customers
    completeness (50 + 100 + 25) / 3 = 175/3); four starts at one price, one without a tier
    (events completeness 75, validity 100), the newest on 30 May; no support tickets."""
    customers = [
        customer("c0", segment="SMB", country="GB", acquisition_source="referral"),
        customer("c1", segment="SMB", country="GB"),
        customer("c2", country="FR"),
        customer("c3", country="DE"),
    ]
    events = [
        start(f"e{i}", f"c{i}", f"s{i}", f"2024-05-{day}T00:00:00Z", 10_000, tier=tier)
        for i, (day, tier) in enumerate([("01", "Pro"), ("10", "Pro"), ("20", "Pro"), ("30", None)])
    ]
    ingest(engine, customers=customers, events=events)


# At the end of 1 June: events timeliness 100 * (2 - 3/2) = 50, so events
# (75 + 100 + 50) / 3 = 75; the ledger 100; overall (175/3 + 75 + 100) / 3 = 700/9.
# At the end of 2 June the newest event is four days old, twice the limit: timeliness 0, events
# (75 + 100 + 0) / 3 = 175/3, overall (175/3 + 175/3 + 100) / 3 = 650/9.


def test_every_quality_score_has_a_metric_name() -> None:
    assert set(QUALITY_METRICS) == {
        "quality_overall",
        "quality_customers", "quality_customers_completeness",
        "quality_subscription_events", "quality_subscription_events_completeness",
        "quality_subscription_events_validity", "quality_subscription_events_timeliness",
        "quality_support_tickets", "quality_support_tickets_completeness",
        "quality_support_tickets_validity", "quality_support_tickets_timeliness",
        "quality_activity_events", "quality_activity_events_timeliness",
        "quality_ledger", "quality_ledger_consistency",
    }  # fmt: skip


def test_the_declared_dimensions_are_those_the_checks_score(engine: Engine) -> None:
    company(engine)
    ticket = {"ticket_id": "t1", "customer_id": "c1", "opened_at": "2024-05-20T10:00:00Z",
              "priority": "low", "category": "bug"}  # fmt: skip
    login = {"event_id": "a1", "customer_id": "c1", "occurred_at": "2024-06-01T09:00:00Z",
             "type": "login"}  # fmt: skip
    ingest(engine, tickets=[ticket], activity=[login])
    with engine.connect() as connection:
        report = quality_report(connection, END_OF_JUNE_1)
    scored = {name: tuple(found["dimensions"]) for name, found in report.datasets.items()}
    assert {name: set(dims) for name, dims in scored.items()} == {
        name: set(dims) for name, dims in DATASET_DIMENSIONS.items()
    }


def test_quality_kpis_take_the_scores_exactly(engine: Engine) -> None:
    company(engine)
    measured(engine, END_OF_JUNE_1)
    definitions = [
        quality("overall", "quality_overall"),
        quality("customers_quality", "quality_customers"),
        quality("completeness", "quality_customers_completeness"),
        quality("events", "quality_subscription_events"),
        quality("events_fresh", "quality_subscription_events_timeliness"),
        quality("ledger", "quality_ledger_consistency"),
        quality("tickets", "quality_support_tickets"),
        quality("quarter", "quality_overall", period="quarter_to_date"),
    ]
    with engine.connect() as connection:
        history = evaluate_kpi_history(connection, definitions, JUNE_1, periods=3)
    assert history["overall"] == [KpiValue("overall", "2024-06", F(700, 9))]
    assert history["quarter"] == [KpiValue("quarter", "2024-Q2", F(700, 9))]
    current = {name: values[-1].value for name, values in history.items()}
    assert current == {
        "overall": F(700, 9),
        "quarter": F(700, 9),
        "customers_quality": F(175, 3),
        "completeness": F(175, 3),
        "events": 75,
        "events_fresh": 50,
        "ledger": 100,
        "tickets": None,  # no tickets, so no checks and no score
    }


def test_a_formula_over_a_quality_kpi_has_the_current_period_only(engine: Engine) -> None:
    company(engine)
    measured(engine, END_OF_JUNE_1)
    definitions = [
        quality("overall", "quality_overall"),
        kpi("customers", metric="customers_end", unit="count", period="month_to_date"),
        kpi("shortfall", formula="100 - overall", unit="score", period="month_to_date"),
        kpi("per_customer", formula="shortfall / customers", period="month_to_date"),
    ]
    with engine.connect() as connection:
        history = evaluate_kpi_history(connection, definitions, JUNE_1, periods=3)
    assert [(v.period, v.value) for v in history["customers"]] == [
        ("2024-04", 0), ("2024-05", 4), ("2024-06", 4),
    ]  # fmt: skip
    assert history["shortfall"] == [KpiValue("shortfall", "2024-06", F(200, 9))]
    assert history["per_customer"] == [KpiValue("per_customer", "2024-06", F(50, 9))]


def test_quality_kpis_have_no_value_before_the_first_report(engine: Engine) -> None:
    company(engine)
    definitions = [
        quality("overall", "quality_overall"),
        kpi("shortfall", formula="100 - overall", unit="score", period="month_to_date"),
    ]
    with engine.connect() as connection:
        history = evaluate_kpi_history(connection, definitions, JUNE_1, periods=3)
    assert history == {
        "overall": [KpiValue("overall", "2024-06", None)],
        "shortfall": [KpiValue("shortfall", "2024-06", None)],
    }


def test_quality_kpis_read_the_newest_report_whatever_the_day_evaluated(engine: Engine) -> None:
    company(engine)
    measured(engine, END_OF_JUNE_1)
    measured(engine, END_OF_JUNE_2)
    definitions = [quality("overall", "quality_overall")]
    with engine.connect() as connection:
        on_june_1 = evaluate_kpi_history(connection, definitions, JUNE_1)
    assert on_june_1["overall"] == [KpiValue("overall", "2024-06", F(650, 9))]


def test_a_quality_kpi_is_stored_again_as_its_data_grows_stale(engine: Engine) -> None:
    company(engine)
    with engine.begin() as connection:
        apply_kpis(connection, [quality("overall", "quality_overall")], "test")
    first_report = measured(engine, END_OF_JUNE_1)
    with engine.begin() as connection:
        first = record_evaluations(connection, JUNE_1, periods=3)
        again = record_evaluations(connection, JUNE_1, periods=3)
    # No ingestion since, so the same data version: the score changes with time alone.
    second_report = measured(engine, END_OF_JUNE_2)
    with engine.begin() as connection:
        stale = record_evaluations(connection, date(2024, 6, 2), periods=3)
        july = record_evaluations(connection, date(2024, 7, 1), periods=3)
    mine = [[e for e in found if e.name == "overall"] for found in (first, again, stale, july)]
    assert [[(e.period, e.value, e.recorded) for e in found] for found in mine] == [
        [("2024-06", F(700, 9), True)],
        [("2024-06", F(700, 9), False)],
        [("2024-06", F(650, 9), True)],
        [("2024-07", F(650, 9), True)],  # June keeps the value it had last while current
    ]
    with engine.connect() as connection:
        rows = kpi_values(connection, "overall")
        history = value_history(connection, "overall")
        version = data_version(connection)
    assert [(row["period"], row["value"]) for row in rows] == [
        ("2024-06", F(700, 9)), ("2024-06", F(650, 9)), ("2024-07", F(650, 9)),
    ]  # fmt: skip
    # Each row is marked with the moment its report was measured after the data version.
    assert (first_report, second_report) == (first_report, first_report + 1)
    assert [row["data_version"] for row in rows] == [
        f"{version}@{END_OF_JUNE_1}", f"{version}@{END_OF_JUNE_2}", f"{version}@{END_OF_JUNE_2}",
    ]  # fmt: skip
    assert [(row["period"], row["value"], row["previous"]) for row in history] == [
        ("2024-06", F(650, 9), None),
        ("2024-07", F(650, 9), F(650, 9)),
    ]


def test_a_new_report_with_the_same_scores_adds_no_value(engine: Engine) -> None:
    company(engine)
    with engine.begin() as connection:
        apply_kpis(connection, [quality("ledger", "quality_ledger")], "test")
    measured(engine, END_OF_JUNE_1)
    with engine.begin() as connection:
        first = record_evaluations(connection, JUNE_1)
    measured(engine, END_OF_JUNE_2)  # the ledger's consistency does not change with time
    with engine.begin() as connection:
        again = record_evaluations(connection, JUNE_1)
    mine = [e for e in first + again if e.name == "ledger"]
    assert [(e.value, e.recorded) for e in mine] == [(100, True), (100, False)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"period": "last_complete_month"}, "a quality score is measured now"),
        ({"group": {"by": "segment", "value": "SMB"}}, "group applies to a revenue metric"),
    ],
)
def test_a_quality_kpi_is_for_the_period_under_way_and_has_no_group(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        quality("q", "quality_overall", **fields)
    [error] = raised.value.errors()
    assert message in error["msg"]


def test_a_dimension_its_dataset_has_no_check_of_is_unknown() -> None:
    with pytest.raises(ValidationError, match="unknown metric 'quality_customers_validity'"):
        quality("q", "quality_customers_validity")


def test_the_starter_set_watches_the_overall_quality() -> None:
    [found] = [d for d in starter_kpis() if d.metric == "quality_overall"]
    assert (found.name, found.unit.value, found.period.value) == (
        "data_quality", "score", "month_to_date"
    )  # fmt: skip


def test_an_alert_rule_on_the_starter_kpi_fires_as_the_data_grows_stale(engine: Engine) -> None:
    company(engine)
    secret = "a-test-secret-key-of-sufficient-length-0123456789"
    rule = """\
rules:
  - name: data-quality-floor
    kpi: data_quality
    condition: {kind: threshold, below: "75"}
"""
    context = AlertContext("https://metrics.example", secret)
    now = now_micros()
    measured(engine, END_OF_JUNE_1)
    with engine.begin() as connection:
        apply_declared(
            connection, parse_declared(rule, "alerts.yaml"), "test", Sealer.from_secret(secret)
        )
        record_evaluations(connection, JUNE_1)
        quiet = evaluate_rules(connection, context, now)
    # No new data: only time has passed, and the score has fallen from 700/9 to 650/9.
    measured(engine, END_OF_JUNE_2)
    with engine.begin() as connection:
        record_evaluations(connection, date(2024, 6, 2))
        stale = evaluate_rules(connection, context, now + 60_000_000)
        [found] = list_instances(connection)
    assert (quiet.fired, stale.fired) == (0, 1)
    assert found["phase"] == "firing"
    assert "72.22 is below the threshold of 75.00" in found["summary"]


def test_the_scheduler_evaluates_quality_kpis_again_after_a_new_report(engine: Engine) -> None:
    company(engine)
    with engine.begin() as connection:
        apply_kpis(connection, [quality("overall", "quality_overall")], "test")
    minute = 60_000_000
    measured(engine, END_OF_JUNE_1)
    scheduler = Scheduler(engine, SchedulerConfig(AlertContext("https://metrics.example", "s")))
    scheduler.evaluate(END_OF_JUNE_1 + minute)
    scheduler.evaluate(END_OF_JUNE_1 + 2 * minute)  # KPIs are hourly, and nothing is new
    assert scheduler.last_evaluated == END_OF_JUNE_1 + minute
    measured(engine, END_OF_JUNE_1 + 10 * minute)  # no new data, but a new report
    scheduler.evaluate(END_OF_JUNE_1 + 11 * minute)
    assert scheduler.last_evaluated == END_OF_JUNE_1 + 11 * minute
    with engine.connect() as connection:
        values = [row["value"] for row in kpi_values(connection, "overall")]
    # 10 minutes later, the newest event is 1.5 + 1/288 limits old: timeliness 50 - 25/72,
    # events (75 + 100 + 50 - 25/72) / 3, overall (700 - 25/72) / 9.
    assert values == [F(700, 9), (700 - F(25, 72)) / 9]


def test_one_worker_round_measures_the_quality_and_evaluates_on_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    company(engine)
    monkeypatch.setenv("EXECMETRICS_DATABASE_URL", engine.url.render_as_string(False))
    result = CliRunner().invoke(cli, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    with engine.connect() as connection:
        report = latest_quality(connection)
        [stored] = kpi_values(connection, "data_quality")  # the starter quality KPI
    assert report is not None and report.report.overall is not None
    assert stored["value"] == report.report.overall
    assert stored["data_version"].endswith(f"@{report.measured_at}")

"""KPI values: each KPI's metric for its period, exactly, and formulas over them."""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import Engine
from tests.builders import ingest, start
from tests.builders import kpi_definition as kpi
from tests.metrics.scenarios import ingest_mixed, steady_churn_events

from execmetrics.kpi.definitions import KpiDefinition
from execmetrics.kpi.evaluation import (
    evaluate_kpi_history,
    evaluate_kpis,
    kpi_values,
    period_label,
    record_evaluations,
)
from execmetrics.kpi.formula import FormulaError
from execmetrics.kpi.service import apply_kpis
from execmetrics.metrics.periods import parse_label
from execmetrics.metrics.service import compute_metrics

F = Fraction
APRIL_15 = date(2024, 4, 15)


def exact_row(engine: Engine, label: str, interval: str = "month", **options: Any) -> Any:
    with engine.connect() as connection:
        start = parse_label(label, "from")
        return compute_metrics(connection, start, start, interval, exact=True, **options).rows


def evaluate(engine: Engine, definitions: list[KpiDefinition], today: date = APRIL_15) -> Any:
    with engine.connect() as connection:
        return evaluate_kpis(connection, definitions, today)


def test_period_labels_count_back_from_today() -> None:
    assert period_label(kpi("x", metric="mrr_end").period, APRIL_15) == "2024-03"
    for period, expected in [
        ("month_to_date", "2024-04"),
        ("quarter_to_date", "2024-Q2"),
        ("year_to_date", "2024"),
    ]:
        assert period_label(kpi("x", metric="mrr_end", period=period).period, APRIL_15) == expected
    assert period_label(kpi("x", metric="mrr_end").period, date(2024, 1, 1)) == "2023-12"


def test_history_gives_each_earlier_period_the_value_it_had_at_its_own_end(
    engine: Engine,
) -> None:
    ingest(engine, events=steady_churn_events())
    definitions = [
        kpi("churn", metric="customer_churn_rate", direction="lower_is_better"),
        kpi("mrr_now", metric="mrr_end", unit="money", period="month_to_date"),
        kpi("quarter_new", metric="new_customers", unit="count", period="quarter_to_date"),
        kpi("twice", formula="mrr_now * 2", unit="money", period="month_to_date"),
    ]
    with engine.connect() as connection:
        history = evaluate_kpi_history(connection, definitions, APRIL_15, periods=4)
    assert [v.period for v in history["churn"]] == ["2023-12", "2024-01", "2024-02", "2024-03"]
    assert [v.period for v in history["quarter_new"]][-2:] == ["2024-Q1", "2024-Q2"]
    month_ends = [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), APRIL_15]
    for back, day in enumerate(month_ends):
        at_the_time = evaluate(engine, definitions, day)
        assert history["mrr_now"][back] == at_the_time["mrr_now"]
        assert history["twice"][back].value == 2 * history["mrr_now"][back].value
    assert history["churn"][-1] == evaluate(engine, definitions)["churn"]


def test_metric_kpis_take_their_periods_rows_exactly(engine: Engine) -> None:
    ingest(engine, events=steady_churn_events())
    values = evaluate(
        engine,
        [
            kpi("churn", metric="customer_churn_rate", direction="lower_is_better"),
            kpi("mrr", metric="mrr_end", unit="money"),
            kpi("mrr_now", metric="mrr_end", unit="money", period="month_to_date"),
            kpi("quarter_new", metric="new_customers", unit="count", period="quarter_to_date"),
            kpi("year_churned", metric="churned_customers", unit="count", period="year_to_date"),
        ],
    )
    assert values["churn"].period == "2024-03"
    assert values["churn"].value == F(1, 20)  # one of 20 customers left in March
    [march] = exact_row(engine, "2024-03")
    assert values["mrr"].value == march["mrr_end"] == 200000
    [april] = exact_row(engine, "2024-04")
    assert (values["mrr_now"].period, values["mrr_now"].value) == ("2024-04", april["mrr_end"])
    [quarter] = exact_row(engine, "2024-Q2", "quarter")
    assert values["quarter_new"].value == quarter["new_customers"]
    [year] = exact_row(engine, "2024", "year")
    assert values["year_churned"].value == year["churned_customers"]


def test_rates_are_exact_fractions_not_rounded_decimals(engine: Engine) -> None:
    events = steady_churn_events()
    ingest(engine, events=events[:3])  # three customers from December 2023
    ingest(engine, events=[e for e in events if e["event_id"] == "b0-x"])  # one leaves in January
    values = evaluate(engine, [kpi("churn", metric="customer_churn_rate")], date(2024, 2, 1))
    assert values["churn"].value == F(1, 3)  # rounded for output it would be 0.333333


def test_a_formula_over_kpis_is_exact(engine: Engine) -> None:
    ingest(engine, events=steady_churn_events())
    values = evaluate(
        engine,
        [
            kpi("churn_share", formula="churned / (start_customers * 3)"),
            kpi("churned", metric="churned_customers", unit="count"),
            kpi("start_customers", metric="customers_start", unit="count"),
        ],
    )
    assert values["churn_share"].value == F(1, 60)  # 1 of 20, over 3
    assert values["churn_share"].period == "2024-03"


def test_a_breakdown_groups_kpi_and_a_missing_group(engine: Engine) -> None:
    ingest_mixed(engine)
    definitions = [
        kpi("smb_mrr", metric="mrr_end", unit="money", group={"by": "segment", "value": "SMB"}),
        kpi("nowhere", metric="mrr_end", unit="money", group={"by": "country", "value": "ZZ"}),
        kpi("nowhere_doubled", formula="nowhere * 2"),
    ]
    today = date(2024, 7, 1)
    values = evaluate(engine, definitions, today)
    rows = exact_row(engine, "2024-06", by="segment")
    [smb] = [row for row in rows if row["group"] == "SMB"]
    assert values["smb_mrr"].value == smb["mrr_end"]
    assert values["nowhere"].value is None
    assert values["nowhere_doubled"].value is None


def test_definitions_that_read_themselves_are_refused(engine: Engine) -> None:
    with pytest.raises(FormulaError, match="cycle"):
        evaluate(engine, [kpi("a", formula="b"), kpi("b", formula="a")])


def test_recording_adds_each_value_once_per_data_version(engine: Engine) -> None:
    events = steady_churn_events()
    ingest(engine, events=events[:3])
    with engine.begin() as connection:
        apply_kpis(connection, [kpi("third", formula="customers / 3")], "test")
        apply_kpis(connection, [kpi("customers", metric="customers_end", unit="count")], "test")
        first = record_evaluations(connection, date(2024, 2, 15))
    assert all(evaluation.recorded for evaluation in first)
    by_name = {evaluation.name: evaluation for evaluation in first}
    assert by_name["customers"].value == 3 and by_name["third"].value == 1
    with engine.begin() as connection:
        again = record_evaluations(connection, date(2024, 2, 15))
    assert not any(evaluation.recorded for evaluation in again)
    ingest(engine, events=[e for e in events if e["event_id"] == "b0-x"])
    with engine.begin() as connection:
        after = {e.name: e for e in record_evaluations(connection, date(2024, 2, 15))}
        apply_kpis(connection, [kpi("third", formula="customers / 7")], "test")
        changed = {e.name: e for e in record_evaluations(connection, date(2024, 2, 15))}
    assert after["third"].recorded and after["third"].value == F(2, 3)
    assert changed["third"].recorded and changed["third"].version == 2
    assert not changed["customers"].recorded
    with engine.connect() as connection:
        history = kpi_values(connection, "third")
    assert [(h["version"], h["period"], h["value"]) for h in history] == [
        (1, "2024-01", 1),
        (1, "2024-01", F(2, 3)),
        (2, "2024-01", F(2, 7)),
    ]


def test_earlier_periods_are_stored_again_only_when_their_value_changes(engine: Engine) -> None:
    events = steady_churn_events()
    ingest(engine, events=events[:3])
    with engine.begin() as connection:
        apply_kpis(connection, [kpi("customers", metric="customers_end", unit="count")], "test")
        first = record_evaluations(connection, date(2024, 3, 15), periods=3)
    assert [e.period for e in first if e.name == "customers" and e.recorded] == [
        "2023-12", "2024-01", "2024-02",
    ]  # fmt: skip
    # New data that leaves the earlier months as they were: only the current one is stored.
    ingest(engine, events=[start("late", "z9", "sz", "2024-02-20T00:00:00Z", 100)])
    with engine.begin() as connection:
        second = record_evaluations(connection, date(2024, 3, 15), periods=3)
    recorded = [e.period for e in second if e.name == "customers" and e.recorded]
    assert recorded == ["2024-02"]
    with engine.connect() as connection:
        stored = kpi_values(connection, "customers")
    # The current period's row stays the newest, which is what current values read.
    assert stored[-1]["period"] == "2024-02"
    # A late event in January changes January: stored again, with the new value.
    ingest(engine, events=[start("later", "z8", "sy", "2024-01-20T00:00:00Z", 100)])
    with engine.begin() as connection:
        third = record_evaluations(connection, date(2024, 3, 15), periods=3)
    changed = {e.period: e for e in third if e.name == "customers" and e.recorded}
    assert set(changed) == {"2024-01", "2024-02"}
    january = next(e for e in first if e.name == "customers" and e.period == "2024-01")
    assert changed["2024-01"].value == january.value + 1  # type: ignore[operator]


def test_twelve_month_retention_is_computed_only_where_a_kpi_reads_it(engine: Engine) -> None:
    ingest(engine, events=steady_churn_events())
    today = date(2025, 1, 15)
    with engine.connect() as connection:
        values = evaluate_kpis(
            connection,
            [
                kpi("nrr", metric="nrr_12m", unit="ratio"),
                kpi("grr", metric="grr_12m", unit="ratio"),
                kpi("net_new", metric="net_new_mrr", period="quarter_to_date"),
            ],
            today,
        )
        december = parse_label("2024-12", "from")
        [full] = compute_metrics(connection, december, december, exact=True).rows
        [lean] = compute_metrics(connection, december, december, exact=True, retention=False).rows
    # 20 customers paid 10000 each at the start of 2024; 13 of them still pay the same.
    assert values["nrr"].value == full["nrr_12m"] == F(13, 20)
    assert values["grr"].value == full["grr_12m"] == F(13, 20)
    [quarter] = exact_row(engine, "2025-Q1", "quarter")
    assert values["net_new"].value == quarter["net_new_mrr"]
    # Without retention, only the two retention figures are missing.
    assert (lean["nrr_12m"], lean["grr_12m"]) == (None, None)
    assert {k: v for k, v in lean.items() if not k.endswith("_12m")} == {
        k: v for k, v in full.items() if not k.endswith("_12m")
    }

"""Values at the edges of what can be stored are reported as problems, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.builders import customer, ingest, spend, start

from execmetrics.ingest.problems import IngestError
from execmetrics.ingest.service import ingest_files


def _problems(error: pytest.ExceptionInfo[IngestError]) -> list[tuple[int | None, str | None]]:
    return [(problem.line, problem.column) for problem in error.value.problems]


def test_a_month_before_year_one_is_a_problem(engine: Engine) -> None:
    with pytest.raises(IngestError) as error:
        ingest(engine, marketing_spend=[spend("0000-01", "google_ads", 100)])
    assert _problems(error) == [(2, "month")]
    assert "expected a month YYYY-MM" in error.value.problems[0].reason


@pytest.mark.parametrize("column", ["amount_minor", "quantity", "interval_count"])
def test_a_number_with_thousands_of_digits_is_a_problem(engine: Engine, column: str) -> None:
    row = start("e1", "c1", "s1", "2024-01-01", 100)
    row[column] = "9" * 5000
    with pytest.raises(IngestError) as error:
        ingest(engine, events=[row])
    assert _problems(error) == [(2, column)]


def test_employees_with_thousands_of_digits_is_a_problem(engine: Engine) -> None:
    with pytest.raises(IngestError) as error:
        ingest(engine, customers=[customer("c1", employees="1" * 5000)])
    assert _problems(error) == [(2, "employees")]


def test_a_short_csv_record_leaves_its_last_columns_empty(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text("customer_id,name,country\nc1,Alpha\nc2\n")
    result = ingest_files(engine, [tmp_path])
    assert result.counts["customers"].inserted == 2


def test_a_short_csv_record_without_a_required_value_names_the_column(
    engine: Engine, tmp_path: Path
) -> None:
    header = "event_id,customer_id,subscription_id,occurred_at,type\n"
    (tmp_path / "customers.csv").write_text("customer_id\nc1\n")
    (tmp_path / "subscription_events.csv").write_text(header + "e1,c1,s1\n")
    with pytest.raises(IngestError) as error:
        ingest_files(engine, [tmp_path])
    assert [(p.source.endswith("subscription_events.csv"), p.line, p.column)
            for p in error.value.problems] == [(True, 2, "type")]  # fmt: skip

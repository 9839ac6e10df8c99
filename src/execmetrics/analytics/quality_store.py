"""Storing data quality reports and reading them back: every quality_reports query in one
place.

A report is measured by the analytics job after each ingestion and at least hourly
(`refresh_quality`), so that quality KPIs read the newest one instead of measuring the
data at every evaluation, and the quality report's readers (the command, the API and the
page) are served it while it is current (docs/quality.md). Each check is kept with its
exact score; the dataset, dimension and overall scores are worked out from the checks when
read, the same way as when measured. Reports older than KEEP_DAYS are dropped, the newest
always kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from execmetrics.analytics.quality import (
    DAY_US,
    DEFAULT_FRESHNESS_US,
    Check,
    QualityReport,
    quality_report,
    report_of,
)
from execmetrics.metrics.cache import data_version
from execmetrics.store.tables import quality_reports

# A report this old is measured again even without new data: timeliness changes with time.
MAX_AGE_US = 3600 * 1_000_000
KEEP_DAYS = 35


@dataclass(frozen=True)
class StoredQuality:
    id: int
    measured_at: int  # microseconds
    data_version: str  # of the data it measured
    freshness_us: int
    report: QualityReport


def save_quality(
    connection: Connection, report: QualityReport, measured_at: int, version: str,
    freshness_us: int,
) -> int:  # fmt: skip
    """Stores a report measured at `measured_at` of the data at `version`; returns its id."""
    checks = [_check_json(check) for check in report.checks]
    values = {"measured_at": measured_at, "data_version": version,
              "freshness_us": freshness_us, "checks": checks}  # fmt: skip
    result = connection.execute(insert(quality_reports).values(**values))
    assert result.inserted_primary_key is not None
    new = int(result.inserted_primary_key[0])
    q = quality_reports.c
    connection.execute(
        delete(quality_reports).where(q.measured_at < measured_at - KEEP_DAYS * DAY_US, q.id != new)
    )
    return new


def latest_quality(connection: Connection) -> StoredQuality | None:
    """The newest stored report."""
    query = select(quality_reports).order_by(quality_reports.c.id.desc()).limit(1)
    row = connection.execute(query).first()
    if row is None:
        return None
    found = row._mapping
    checks = [_check(item) for item in found["checks"]]
    return StoredQuality(
        id=int(found["id"]), measured_at=int(found["measured_at"]),
        data_version=found["data_version"], freshness_us=int(found["freshness_us"]),
        report=report_of(checks),
    )  # fmt: skip


def newest_quality_id(connection: Connection) -> int | None:
    """The newest report's id: a cheap test of whether a new report was stored."""
    found = connection.execute(select(func.max(quality_reports.c.id))).scalar()
    return None if found is None else int(found)


def current_quality(connection: Connection, now: int, freshness_us: int) -> StoredQuality | None:
    """The newest report, when it is of the data as it is, graded with `freshness_us`, and
    less than MAX_AGE_US old at `now` (not measured after it, as when the clock went back);
    else None."""
    return _current(connection, now, data_version(connection), freshness_us)


def quality_due(connection: Connection, now: int, freshness_us: int) -> bool:
    """No current report (`current_quality`): one is to be measured."""
    return current_quality(connection, now, freshness_us) is None


def _current(
    connection: Connection, now: int, version: str, freshness_us: int
) -> StoredQuality | None:
    newest = latest_quality(connection)
    if (
        newest is None
        or newest.data_version != version
        or newest.freshness_us != freshness_us
        or not 0 <= now - newest.measured_at < MAX_AGE_US
    ):
        return None
    return newest


def refresh_quality(
    connection: Connection, now: int, freshness_us: int = DEFAULT_FRESHNESS_US
) -> int | None:
    """Measures the data as of `now` and stores the report when one is due (`quality_due`);
    returns the new report's id, or None when the newest is still current."""
    version = data_version(connection)
    if _current(connection, now, version, freshness_us) is not None:
        return None
    report = quality_report(connection, now, freshness_us)
    return save_quality(connection, report, now, version, freshness_us)


def _check_json(check: Check) -> dict[str, Any]:
    return {
        "dataset": check.dataset, "dimension": check.dimension, "name": check.name,
        "description": check.description, "total": check.total, "failing": check.failing,
        "score": str(check.score), "examples": check.examples,
    }  # fmt: skip


def _check(item: dict[str, Any]) -> Check:
    return Check(
        dataset=item["dataset"], dimension=item["dimension"], name=item["name"],
        description=item["description"], total=int(item["total"]),
        failing=int(item["failing"]), score=Fraction(item["score"]),
        examples=[str(example) for example in item["examples"]],
    )  # fmt: skip

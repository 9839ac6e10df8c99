"""Forecasts and anomaly judgements of a named series, and the data quality report, as the
command line prints them and the API and dashboard show them (docs/forecasting.md,
docs/anomalies.md, docs/quality.md)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from sqlalchemy import Connection

from execmetrics.analytics.anomaly import detect
from execmetrics.analytics.forecast import forecast_document, forecast_series
from execmetrics.analytics.metric_series import NamedSeries
from execmetrics.analytics.quality import DEFAULT_FRESHNESS_US, quality_document, quality_report
from execmetrics.analytics.quality_store import current_quality
from execmetrics.metrics.cache import DocumentCache, cache_key
from execmetrics.timeutil import now_micros


def forecast_of(named: NamedSeries, horizon: int) -> dict[str, Any]:
    """Raises ForecastError for a horizon or series that cannot be forecast."""
    result = forecast_series(named.series, horizon)
    return {
        "series": named.name,
        "interval": named.series.interval,
        "unit": named.unit,
        **({"currency": named.currency} if named.unit == "money" else {}),
        **forecast_document(result, named.unit),
    }


def cached_forecast(cache: DocumentCache, named: NamedSeries, horizon: int) -> dict[str, Any]:
    """`forecast_of`, from the document cache when the same series (the same values, whatever
    the data version) was forecast as far ahead before: the backtest, the costly part,
    depends on nothing else. Raises ForecastError as `forecast_of` does."""
    series = named.series
    identity = [named.name, named.unit, named.currency, series.interval, series.labels(),
                list(series.values)]  # fmt: skip
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]
    text = cache.document(
        cache_key("forecast", digest, horizon=horizon),
        lambda: json.dumps(forecast_of(named, horizon)),
    )
    found: dict[str, Any] = json.loads(text)
    return found


def anomalies_of(named: NamedSeries, method: str, sensitivity: float | None) -> dict[str, Any]:
    """Raises AnomalyError for an unknown method or a sensitivity that is not positive."""
    series = named.series
    found = detect(series.values, series.season_length, method, sensitivity)
    points = [
        {
            "period": period,
            "value": value,
            "expected": _finite(found.expected[i]),
            "lower": _finite(found.lower[i]),
            "upper": _finite(found.upper[i]),
            "score": _finite(found.score[i]),
            "flag": bool(found.flag[i]),
        }
        for i, (period, value) in enumerate(zip(series.labels(), series.values, strict=True))
    ]
    return {
        "series": named.name,
        "interval": series.interval,
        "season_length": series.season_length,
        "method": found.method,
        "sensitivity": found.sensitivity,
        "flagged": [point["period"] for point in points if point["flag"]],
        "points": points,
    }


def quality_of(
    connection: Connection, freshness_us: int = DEFAULT_FRESHNESS_US, now_us: int | None = None
) -> dict[str, Any]:
    """The data quality document at `now_us` (default: now), as `execmetrics quality --format
    json` prints it, timeliness graded against `freshness_us`: the stored report while it is
    current (analytics/quality_store.py), else measured now."""
    at = now_micros() if now_us is None else now_us
    stored = current_quality(connection, at, freshness_us)
    if stored is not None:
        return quality_document(stored.report, stored.measured_at)
    return quality_document(quality_report(connection, at, freshness_us), at)


def _finite(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None

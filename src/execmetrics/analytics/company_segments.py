"""Segments of the company's own paying customers as of a date, from the built-in behaviour
features (docs/segments.md): MRR, tenure, login frequency, feature breadth and tickets, read
by `churn_features` with nothing from after the date, named with the canonical names.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sqlalchemy import Connection

from execmetrics.analytics.churn_features import ChurnFeatures, churn_features
from execmetrics.analytics.feature_table import FeatureTable
from execmetrics.analytics.segments import (
    DEFAULT_K,
    Segmentation,
    SegmentsError,
    segment_customers,
)
from execmetrics.settings_store import reporting_currency

BEHAVIOUR_FEATURES = ("mrr", "tenure_days", "logins_30d", "feature_breadth_90d", "tickets_90d")
# k-means needs at least two segments, and k at most one less than the customers.
MIN_CUSTOMERS = 3


def behaviour_features(connection: Connection, as_of: date) -> tuple[FeatureTable, list[str]]:
    """The behaviour features of every customer paying at the start of `as_of`, ordered by
    customer id, and notes on what was missing before the date."""
    return behaviour_table(churn_features(connection, as_of))


def behaviour_table(found: ChurnFeatures) -> tuple[FeatureTable, list[str]]:
    """The behaviour features among churn features already read, ordered by customer id, and
    notes on what was missing before their date."""
    as_of = found.as_of
    # Ordered by the customer's own id, not the database's key, so that the same data
    # loaded in another order or another database gives the same segments.
    order = sorted(range(len(found)), key=lambda n: found.table.ids[n])
    table = FeatureTable(
        ids=[found.table.ids[n] for n in order],
        numeric={name: found.column(name)[order] for name in BEHAVIOUR_FEATURES},
        categorical={},
        label=None,
    )
    notes = []
    if len(table) and not found.has_activity:
        notes.append(
            f"no activity is stored before {as_of}: logins_30d and feature_breadth_90d are 0 "
            "for every customer"
        )
    if len(table) and not found.has_tickets:
        notes.append(f"no support ticket is stored before {as_of}: tickets_90d is 0 throughout")
    return table, notes


def company_segments(
    connection: Connection,
    as_of: date,
    k: int | None = DEFAULT_K,
    seed: int = 0,
    given: bool = False,
) -> Segmentation:
    """Segments of the customers paying at the start of `as_of`; `k=None` chooses k by
    silhouette. MRR is in the reporting currency's minor units."""
    found = churn_features(connection, as_of)
    return segments_of(found, reporting_currency(connection), k, seed, given)


def segments_of(
    found: ChurnFeatures,
    currency: str,
    k: int | None = DEFAULT_K,
    seed: int = 0,
    given: bool = False,
) -> Segmentation:
    """Segments of the customers in churn features already read (as for company_segments);
    MRR is in `currency`'s minor units."""
    table, notes = behaviour_table(found)
    if len(table) < MIN_CUSTOMERS:
        raise SegmentsError(
            f"as-of: {len(table)} paying customers at the start of {found.as_of}; segments "
            f"need at least {MIN_CUSTOMERS}"
        )
    result = segment_customers(table, k, seed, given, canonical=True, currency=currency)
    return replace(result, as_of=found.as_of, notes=notes)

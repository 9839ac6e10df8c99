"""Churn features as of a date, hand-computed, with nothing read from after the date; the
labels; and the weighted risk score built on them."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine
from tests.builders import cancel, change, ingest, start, ticket, use

from execmetrics.analytics.churn import weighted_risk
from execmetrics.analytics.churn_features import NEVER_DAYS, churn_features, churn_labels
from execmetrics.analytics.churn_weights import DEFAULT_WEIGHTS

AS_OF = date(2025, 6, 1)


@pytest.fixture
def company(engine: Engine) -> Engine:
    ingest(
        engine,
        events=[
            start("e1", "c1", "s1", "2025-01-01T00:00:00Z", 4900, quantity=2, tier="Professional"),
            change("e2", "c1", "s1", "2025-04-15T00:00:00Z", 3900, quantity=2, tier="Professional"),
            start("e3", "c2", "s2", "2025-05-01T00:00:00Z", 120000, interval="year", quantity=3,
                  tier="Scale", plan="scale-annual"),
            start("e4", "c3", "s3", "2025-02-01T00:00:00Z", 1900),
            cancel("e5", "c3", "s3", "2025-05-15T00:00:00Z"),
            start("e6", "c4", "s4", "2025-03-01T00:00:00Z", 1900, tier="Starter"),
            cancel("e7", "c4", "s4", "2025-06-20T00:00:00Z"),
        ],
        tickets=[
            ticket("t1", "c1", "2025-05-01T09:00:00Z", "urgent", "2025-05-02T09:00:00Z"),
            ticket("t2", "c1", "2025-05-20T09:00:00Z"),
            ticket("t3", "c1", "2025-01-10T09:00:00Z", "low", "2025-06-05T09:00:00Z"),
            ticket("t4", "c1", "2025-06-02T09:00:00Z", "urgent"),  # after the date
        ],
        activity=[
            use("a1", "c1", "2025-05-31T18:00:00Z"),
            use("a2", "c1", "2025-05-25T09:00:00Z"),
            use("a3", "c1", "2025-05-10T09:00:00Z"),
            use("a4", "c1", "2025-04-01T09:00:00Z"),
            use("a5", "c1", "2025-03-20T09:00:00Z"),
            use("a6", "c1", "2025-06-01T10:00:00Z"),  # on the date: not yet known
            use("a7", "c1", "2025-05-20T09:00:00Z", "gallery_upload", 30),
            use("a8", "c1", "2025-04-10T09:00:00Z", "invoice_sent"),
            use("a9", "c1", "2025-03-15T09:00:00Z", "invoice_sent"),
            use("a10", "c1", "2025-03-16T09:00:00Z", "booking_form"),
        ],
    )  # fmt: skip
    return engine


def test_features_of_paying_customers_as_of_a_date(company: Engine) -> None:
    with company.connect() as connection:
        features = churn_features(connection, AS_OF)
    assert features.table.ids == ["c1", "c2", "c4"]  # c3 left before the date
    assert features.has_activity and features.has_tickets
    c1 = {name: float(values[0]) for name, values in features.table.numeric.items()}
    assert c1 == {
        "mrr": 7800, "tenure_days": 151, "seats": 2,  # 2 seats at 3900
        "logins_7d": 2, "logins_30d": 3, "logins_90d": 5, "days_since_login": 1,
        "login_trend": 2.0,  # 3 logins against 2 in the 60 days before: 1 a month
        "usage_30d": 1, "usage_trend": pytest.approx(1 / 1.5 - 1), "feature_breadth_90d": 3,
        "tickets_90d": 2, "open_tickets": 2, "urgent_tickets_90d": 1, "contraction_90d": 2000,
    }  # fmt: skip
    assert features.table.categorical == {
        "tier": ["Professional", "Scale", "Starter"],
        "interval": ["month", "year", "month"],
    }
    c2 = {name: float(values[1]) for name, values in features.table.numeric.items()}
    assert (c2["mrr"], c2["seats"], c2["tenure_days"]) == (30000, 3, 31)
    assert c2["days_since_login"] == NEVER_DAYS and c2["logins_90d"] == 0


def test_labels_say_who_churned_within_the_horizon(company: Engine) -> None:
    with company.connect() as connection:
        features = churn_features(connection, AS_OF)
        assert churn_labels(connection, features.keys, AS_OF, 60).tolist() == [0, 0, 1]
        assert churn_labels(connection, features.keys, AS_OF, 14).tolist() == [0, 0, 0]


def test_the_weighted_score_adds_its_weighted_components(company: Engine) -> None:
    with company.connect() as connection:
        risk = weighted_risk(churn_features(connection, AS_OF), DEFAULT_WEIGHTS)
    c1 = {name: float(values[0]) for name, values in risk.components.items()}
    assert c1 == pytest.approx(
        {"login": 0.0, "usage": 1 / 3, "tickets": 1.0, "contraction": 4000 / 9800,
         "tenure": 1 - 151 / 365}
    )  # fmt: skip
    assert float(risk.score[0]) == pytest.approx(
        0.25 / 3 + 0.20 + 0.15 * 4000 / 9800 + 0.10 * (1 - 151 / 365)
    )
    # No login and no feature use at all: both activity components are at their worst.
    assert float(risk.score[1]) == pytest.approx(0.30 + 0.25 + 0.10 * (1 - 31 / 365))


def test_without_activity_or_tickets_those_components_weigh_nothing(engine: Engine) -> None:
    ingest(engine, events=[start("e1", "c1", "s1", "2025-05-02T00:00:00Z", 1900)])
    with engine.connect() as connection:
        features = churn_features(connection, AS_OF)
    assert not features.has_activity and not features.has_tickets
    risk = weighted_risk(features, DEFAULT_WEIGHTS)
    # Only contraction (none) and tenure (30 days) are left, weighing 15 and 10.
    assert float(risk.score[0]) == pytest.approx(0.10 / 0.25 * (1 - 30 / 365))

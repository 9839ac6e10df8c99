"""Event streams shared by the metrics tests, with their hand-computed figures in comments."""

from __future__ import annotations

from sqlalchemy import Engine
from tests.builders import cancel, change, customer, fx, ingest, start

from execmetrics.ingest.readers import Row

# Additive fields of a metrics row: a customer-level breakdown's groups sum to the total.
ADDITIVE_FIELDS = (
    "mrr_start",
    "mrr_end",
    "new_mrr",
    "expansion_mrr",
    "reactivation_mrr",
    "contraction_mrr",
    "churned_mrr",
    "net_new_mrr",
    "arr",
    "customers_start",
    "customers_end",
    "new_customers",
    "reactivated_customers",
    "churned_customers",
)


def mixed_customers() -> list[Row]:
    return [
        customer(
            "c1",
            segment="SMB",
            country="GB",
            acquisition_source="google_ads",
            acquisition_campaign="winter",
            vertical="photographer",
        ),
        customer(
            "c2",
            segment="Enterprise",
            country="FR",
            acquisition_source="instagram",
            acquisition_campaign="reels",
            vertical="venue",
        ),
        customer(
            "c3",
            segment="SMB",
            country="GB",
            acquisition_source="google_ads",
            vertical="photographer",
        ),
        customer(
            "c4", employees=1500, acquisition_source="referral", acquisition_campaign="winter"
        ),
        customer("c5", segment="Mid-Market", country="DE", vertical="venue"),
        # c6 has no attributes at all: it forms "(none)" in every breakdown.
    ]


def mixed_events() -> list[Row]:
    """A small company, December 2023 to April 2024 (all amounts in GBP minor units unless EUR).

    Dec 2023 end: c1 10000, c3 3000.
    Jan: c5 new 8500 (10000 EUR x 0.85) at 00:00 on the 1st; c2 new 5000 then +2000 (second
         subscription); c1 +5000; c3 churns 3000, reactivates 3000, churns again 3000.
    Feb: c1 -3000; c2 -2000 (cancels one of two); c4 starts a trial (worth 0) ending 10 Mar;
         c6 joins at 4000 and churns.
    Mar: c2 churns 5000 at 00:00 on the 1st; c1 churns 12000; c4's trial ends: new 8000.
    Apr: c2 comes back at 7000 (reactivation).
    """
    return [
        start("c1-1", "c1", "c1-s1", "2023-12-05T09:00:00Z", 10000, tier="Pro", plan="pro-m"),
        change("c1-2", "c1", "c1-s1", "2024-01-10T09:00:00Z", 15000, tier="Scale", plan="scale-m"),
        change("c1-3", "c1", "c1-s1", "2024-02-10T09:00:00Z", 12000, tier="Scale", plan="scale-m"),
        cancel("c1-4", "c1", "c1-s1", "2024-03-10T09:00:00Z"),
        start("c2-1", "c2", "c2-s1", "2024-01-03T12:00:00Z", 5000, tier="Pro", plan="pro-m"),
        start(
            "c2-2", "c2", "c2-s2", "2024-01-20T12:00:00Z", 2000, tier="Starter", plan="starter-m"
        ),
        cancel("c2-3", "c2", "c2-s2", "2024-02-15T12:00:00Z"),
        cancel("c2-4", "c2", "c2-s1", "2024-03-01T00:00:00Z"),
        start("c2-5", "c2", "c2-s3", "2024-04-05T12:00:00Z", 7000, tier="Pro", plan="pro-m"),
        start(
            "c3-1",
            "c3",
            "c3-s1",
            "2023-11-01T00:00:00Z",
            36000,
            interval="year",
            plan="pro-y",
            tier="Pro",
        ),
        cancel("c3-2", "c3", "c3-s1", "2024-01-15T08:00:00Z"),
        start(
            "c3-3",
            "c3",
            "c3-s1",
            "2024-01-25T08:00:00Z",
            36000,
            interval="year",
            plan="pro-y",
            tier="Pro",
        ),
        cancel("c3-4", "c3", "c3-s1", "2024-01-28T08:00:00Z"),
        start(
            "c4-1",
            "c4",
            "c4-s1",
            "2024-02-10T10:00:00Z",
            8000,
            tier="Scale",
            plan="scale-m",
            trial_ends_at="2024-03-10T10:00:00Z",
        ),
        start(
            "c5-1", "c5", "c5-s1", "2024-01-01T00:00:00Z", 10000, currency="EUR", plan="pro-m-eur"
        ),
        start(
            "c6-1", "c6", "c6-s1", "2024-02-02T10:00:00Z", 4000, tier="Starter", plan="starter-m"
        ),
        cancel("c6-2", "c6", "c6-s1", "2024-02-20T10:00:00Z"),
    ]


def ingest_mixed(engine: Engine) -> None:
    ingest(
        engine,
        customers=mixed_customers(),
        events=mixed_events(),
        fx_rates=[fx("2023-12-01", "EUR", "0.85")],
    )


def steady_churn_events(target_new: int = 1) -> list[Row]:
    """20 customers at 10000/month from 1 Dec 2023. In Jan 2024 two of them cancel; in Feb none;
    in each of Mar to Jun one cancels. Every cancellation is replaced by a new customer later in
    the same month, so each month from January starts with 20 customers: churn rates 0.10, 0,
    0.05, 0.05, 0.05, 0.05, mean 0.05. In July one customer cancels and `target_new` join, so
    July's ARPA is exactly 10000."""
    events: list[Row] = [
        start(f"b{i}", f"b{i:02d}", f"b{i}-s", "2023-12-01T00:00:00Z", 10000) for i in range(20)
    ]
    cancels = {"01": 2, "02": 0, "03": 1, "04": 1, "05": 1, "06": 1, "07": 1}
    leaving = iter(range(20))
    for month, count in cancels.items():
        for n in range(count):
            who = next(leaving)
            events.append(
                cancel(f"b{who}-x", f"b{who:02d}", f"b{who}-s", f"2024-{month}-0{n + 2}T00:00:00Z")
            )
        joiners = target_new if month == "07" else count
        for n in range(joiners):
            events.append(
                start(
                    f"n{month}{n}",
                    f"n{month}{n}",
                    f"n{month}{n}-s",
                    f"2024-{month}-2{n}T00:00:00Z",
                    10000,
                )
            )
    return events

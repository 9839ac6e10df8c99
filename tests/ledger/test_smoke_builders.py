from sqlalchemy import Engine
from tests.builders import cancel, ingest, metrics, start


def test_one_customer_month_by_month(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 4900),
            cancel("e2", "c1", "s1", "2024-03-05T00:00:00Z"),
        ],
    )
    rows = metrics(engine, "2024-01", "2024-03")
    assert [(r["period"], r["mrr_end"]) for r in rows] == [
        ("2024-01", 4900),
        ("2024-02", 4900),
        ("2024-03", 0),
    ]
    assert rows[0]["new_mrr"] == 4900 and rows[2]["churned_mrr"] == 4900

"""Segments of the company's own paying customers from the built-in behaviour features: a
population of five kinds of customer, built so that each canonical name has one right
answer; the same segments on every run; the command on a database and its refusals."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.builders import ingest, start, ticket, use
from typer.testing import CliRunner

from execmetrics.analytics.company_segments import BEHAVIOUR_FEATURES, company_segments
from execmetrics.analytics.segments import (
    AT_RISK,
    INACTIVE,
    NEW,
    POWER_USERS,
    STEADY,
    canonical_names,
)
from execmetrics.cli import app as cli
from execmetrics.demo import DemoSpec, write_demo
from execmetrics.ingest.service import ingest_files

AS_OF = date(2025, 6, 1)
FEATURES = ("gallery_upload", "invoice_sent", "booking_form", "calendar_sync", "contract_sign",
            "quote_builder")  # fmt: skip
# Per kind of customer: how many, then each one's MRR (plus 100 per member), tenure in days
# (plus 1 per member), logins in 30 days, features used in 90 days and tickets in 90 days.
KINDS = {
    POWER_USERS: (4, 20_000, 700, 20, 6, 1),
    STEADY: (8, 5_000, 500, 8, 3, 0),
    NEW: (5, 4_000, 20, 6, 2, 1),
    AT_RISK: (6, 6_000, 400, 3, 1, 6),
    INACTIVE: (7, 3_000, 450, 0, 0, 0),
}


def _at(days_before: int) -> str:
    return f"{AS_OF - timedelta(days=days_before)}T09:00:00Z"


def population(engine: Engine) -> None:
    """30 customers of five kinds, each kind's members alike but for MRR and tenure."""
    events, tickets, activity = [], [], []
    for kind, (size, mrr, tenure, logins, breadth, opened) in KINDS.items():
        for member in range(size):
            who = f"{kind.replace(' ', '_')}-{member}"
            started = f"{AS_OF - timedelta(days=tenure + member)}T00:00:00Z"
            events.append(start(f"{who}-e", who, f"{who}-s", started, mrr + 100 * member))
            activity += [use(f"{who}-l{day}", who, _at(day + 1)) for day in range(logins)]
            activity += [use(f"{who}-f{n}", who, _at(n + 3), FEATURES[n]) for n in range(breadth)]
            tickets += [ticket(f"{who}-t{n}", who, _at(n + 10), closed=_at(n + 9))
                        for n in range(opened)]  # fmt: skip
    ingest(engine, events=events, tickets=tickets, activity=activity)


def kind_of(customer_id: str) -> str:
    return customer_id.rsplit("-", 1)[0].replace("_", " ")


def test_each_kind_of_customer_gets_its_canonical_name(engine: Engine) -> None:
    population(engine)
    with engine.connect() as connection:
        result = company_segments(connection, AS_OF)
    assert (result.rows, result.k, result.chosen_by, result.naming) == (
        30,
        5,
        "default",
        "canonical",
    )
    assert (result.as_of, result.currency, result.notes) == (AS_OF, "GBP", [])
    assert result.features == list(BEHAVIOUR_FEATURES)
    # Numbered by size, largest first; each segment is exactly one kind, named after it.
    assert [(s.number, s.name, s.size) for s in result.segments] == [
        (1, STEADY, 8), (2, INACTIVE, 7), (3, AT_RISK, 6), (4, NEW, 5), (5, POWER_USERS, 4),
    ]  # fmt: skip
    names = result.names()
    assert all(names[number] == kind_of(who) for who, number in result.assignments.items())
    # MRR summed exactly, in pence: 4 power users at 20,000 + 100 x (0 + 1 + 2 + 3), ...
    assert {s.name: s.mrr for s in result.segments} == {
        POWER_USERS: 80_600, STEADY: 42_800, NEW: 21_000, AT_RISK: 37_500, INACTIVE: 23_100,
    }  # fmt: skip
    by_name = {s.name: s for s in result.segments}
    # The centre in each feature's own units: members alike on a feature share its value.
    assert by_name[INACTIVE].centroid["logins_30d"] == 0
    assert by_name[POWER_USERS].centroid["logins_30d"] == pytest.approx(20)
    assert by_name[AT_RISK].centroid["tickets_90d"] == pytest.approx(6)
    assert by_name[NEW].centre["tenure_days"] == 22  # the median of 20 to 24 days
    assert by_name[POWER_USERS].centre["mrr"] == 20_150
    assert result.silhouette > 0.5


def test_the_same_data_and_seed_give_the_same_segments_on_every_run(engine: Engine) -> None:
    population(engine)
    with engine.connect() as connection:
        first = company_segments(connection, AS_OF, seed=3)
        second = company_segments(connection, AS_OF, seed=3)
        chosen = [company_segments(connection, AS_OF, None, seed=3) for _ in range(2)]
    assert first == second
    assert chosen[0] == chosen[1] and chosen[0].k == 5


def test_the_demo_company_gets_every_canonical_name_once_the_same_each_run(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    write_demo(DemoSpec(customers=300, months=24, seed=5, end_month="2025-06"), tmp_path / "demo")
    ingest_files(sqlite_engine, [tmp_path / "demo"])
    with sqlite_engine.connect() as connection:
        runs = [company_segments(connection, date(2025, 7, 1)) for _ in range(2)]
    assert runs[0] == runs[1]
    assert sorted(s.name for s in runs[0].segments) == sorted(
        [POWER_USERS, STEADY, NEW, AT_RISK, INACTIVE]
    )
    sizes = [s.size for s in runs[0].segments]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == runs[0].rows


def test_names_follow_the_rule_on_hand_made_centres() -> None:
    def centre(logins: float, breadth: float, tenure: float, tickets: float) -> dict[str, float]:
        return {"mrr": 0.0, "tenure_days": tenure, "logins_30d": logins,
                "feature_breadth_90d": breadth, "tickets_90d": tickets}  # fmt: skip

    five = [
        centre(0.2, 0.0, 0.3, -0.5),  # nearest the middle
        centre(-1.6, -1.4, 0.2, -0.8),  # use -1.5: inactive scores 1.5
        centre(-0.3, -0.3, 0.1, 1.6),  # at risk: 1.6 + 0.3 = 1.9, the best fit of all
        centre(0.1, 0.3, -2.0, 0.0),  # new: 2.0
        centre(1.4, 1.2, 0.6, 0.1),  # power users: 1.3
    ]
    assert canonical_names(five) == [STEADY, INACTIVE, AT_RISK, NEW, POWER_USERS]
    # Two segments: the better fit of any scored name (power users, 1.3, over inactive's
    # 0.2), and the other is steady.
    assert canonical_names([five[0], five[4]]) == [STEADY, POWER_USERS]
    # Beyond five, steady goes to the segment left nearest the middle; the rest get None.
    seven = [*five, centre(0.1, 0.1, 0.0, 0.0), centre(0.9, 0.9, 0.9, 0.9)]
    assert canonical_names(seven) == [None, INACTIVE, AT_RISK, NEW, POWER_USERS, STEADY, None]
    # Equal fits: the earlier segment; with equal scores, the earlier name (inactive and
    # power users both fit a centre with no standing at all by 0).
    twins = [centre(-1.0, -1.0, 0.0, -1.0), centre(-1.0, -1.0, 0.0, -1.0)]
    assert canonical_names(twins) == [INACTIVE, STEADY]
    assert canonical_names([centre(0, 0, 0, 0), centre(0, 0, 0, 0)]) == [INACTIVE, STEADY]


def run(*arguments: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["segments", *arguments])
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def test_the_command_segments_the_database_the_same_way_twice(
    engine: Engine, tmp_path: Path
) -> None:
    population(engine)
    url = engine.url.render_as_string(hide_password=False)
    outputs = []
    for n in range(2):
        code, stdout, _ = run("--db", url, "--as-of", "2025-06-01", "--format", "json",
                              "--assignments", str(tmp_path / f"run{n}.csv"))  # fmt: skip
        assert code == 0
        outputs.append(stdout)
    assert outputs[0] == outputs[1]
    assert (tmp_path / "run0.csv").read_bytes() == (tmp_path / "run1.csv").read_bytes()
    document = json.loads(outputs[0])
    assert (document["k"], document["as_of"], document["currency"]) == (5, "2025-06-01", "GBP")
    power = document["segments"][4]
    assert (power["name"], power["size"], power["share"], power["mrr"]) == (
        POWER_USERS, 4, round(4 / 30, 4), 80_600,
    )  # fmt: skip
    assert power["centroid"]["logins_30d"] == pytest.approx(20)
    assert isinstance(power["centroid"]["mrr"], int)
    with (tmp_path / "run0.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30 and list(rows[0]) == ["customer_id", "segment", "name"]
    assert all(row["name"] == kind_of(row["customer_id"]) for row in rows)
    assert {row["customer_id"]: row["segment"] for row in rows}["power_users-0"] == "5"
    code, table, _ = run("--db", url, "--as-of", "2025-06-01")
    assert code == 0
    assert "5 segments of 30 paying customers as of 2025-06-01 (default k)" in table
    power_row = next(line for line in table.splitlines() if "power users" in line).split()
    # MRR 80,600 pence in all; the centre's MRR 20,150 pence a customer, half up to GBP 202.
    assert power_row[:9] == ["5", "power", "users", "4", "13.3%", "GBP", "806", "GBP", "202"]


def test_notes_say_when_activity_and_tickets_are_missing(engine: Engine) -> None:
    ingest(engine, events=[start(f"e{n}", f"c{n}", f"s{n}", "2025-01-01T00:00:00Z", 1000 * n)
                           for n in range(1, 5)])  # fmt: skip
    with engine.connect() as connection:
        result = company_segments(connection, AS_OF, 2)
    assert result.notes == [
        "no activity is stored before 2025-06-01: logins_30d and feature_breadth_90d are 0 for "
        "every customer",
        "no support ticket is stored before 2025-06-01: tickets_90d is 0 throughout",
    ]
    assert result.rows == 4 and result.k == 2


def test_bad_options_are_refused_naming_them(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    table = tmp_path / "customers.csv"
    table.write_text("customer,mrr\na,1\nb,2\nc,3\n")
    refused = {
        ("--k", "1"): "--k: expected 2 or more, got 1",
        ("--as-of", "June"): "--as-of: expected a date YYYY-MM-DD, got 'June'",
        ("--seed", "-1"): "--seed: expected 0 to 4294967295, got -1",
        ("--db", url, "--as-of", "2025-06-01"):
            "--as-of: 0 paying customers at the start of 2025-06-01; segments need at least 3",
        ("--id", "customer"): "--id: only with --features",
        ("--features", str(table)): "--id: required with --features",
        ("--features", str(table), "--id", "customer", "--as-of", "2025-06-01"):
            "--as-of: not used with --features",
        ("--format", "xml"): "--format: expected one of table, json, got 'xml'",
    }  # fmt: skip
    for arguments, message in refused.items():
        code, stdout, stderr = run(*arguments)
        assert (code, stdout) == (2, ""), arguments
        assert message in stderr, (arguments, stderr)
    population(engine)
    code, _, stderr = run("--db", url, "--as-of", "2025-06-01", "--k", "40")
    assert code == 2 and "--k: expected 2 to 29 for 30 rows, got 40" in stderr

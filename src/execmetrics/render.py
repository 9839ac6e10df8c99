"""Rendering metric rows as JSON, CSV or Rich tables; all three from the same rows."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from fractions import Fraction
from typing import Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from execmetrics.metrics.service import MetricsReport, as_decimal
from execmetrics.money import Money, round_half_up

FORMATS = ("table", "json", "csv")
MONEY_FIELDS = {
    "mrr_start",
    "mrr_end",
    "new_mrr",
    "expansion_mrr",
    "reactivation_mrr",
    "contraction_mrr",
    "churned_mrr",
    "net_new_mrr",
    "arr",
    "arpa",
    "ltv",
    "marketing_spend",
    "cac",
    "mrr",
}
PERCENT_FIELDS = {
    "customer_churn_rate",
    "gross_mrr_churn_rate",
    "net_mrr_churn_rate",
    "grr",
    "nrr",
    "nrr_12m",
    "grr_12m",
    "mrr_growth",
    "mrr_growth_yoy",
    "logo_retention",
    "revenue_retention",
    "activity_retention",
}


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        # A six-place decimal has an exact shortest float repr, so the digits survive.
        return float(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def json_text(document: dict[str, Any], indent: int | None = 2) -> str:
    """JSON with decimal rates as numbers."""
    return json.dumps(document, default=_json_default, indent=indent)


def to_json(report: MetricsReport) -> str:
    return json_text(report.as_dict())


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return out.getvalue()


def format_value(name: str, value: Any, currency: str) -> str:
    """A value for people: money in whole units of the currency, rates as percentages."""
    if value is None:
        return "-"
    if name in MONEY_FIELDS:
        return Money(int(value), currency).format(whole=True).split(" ", 1)[1]
    if name in PERCENT_FIELDS:
        return f"{Decimal(value) * 100:.1f}%"
    if isinstance(value, Decimal | float):
        return f"{value:.2f}"
    return str(value)


def format_kpi_value(value: Fraction | None, unit: str, currency: str) -> str:
    """A KPI's exact value for people, by its unit (docs/kpis.md)."""
    if value is None:
        return "-"
    if unit == "money":
        return Money(round_half_up(value), currency).format()
    if unit == "percent":
        return f"{as_decimal(value * 100):.2f}%"
    if unit == "count" and value.denominator == 1:
        return f"{value.numerator:,}"
    return f"{as_decimal(value):.4f}" if unit == "ratio" else f"{as_decimal(value):,.2f}"


HEADINGS = {
    "period": "Period", "group": "Group", "mrr_start": "Start MRR", "mrr_end": "End MRR",
    "new_mrr": "New MRR", "expansion_mrr": "Expansion", "reactivation_mrr": "Reactivation",
    "contraction_mrr": "Contraction", "churned_mrr": "Churned", "net_new_mrr": "Net new",
    "customers_end": "Customers", "customer_churn_rate": "Churn", "nrr": "NRR",
    "quick_ratio": "Quick ratio", "arpa": "ARPA", "ltv": "LTV", "cac": "CAC",
    "cohort": "Cohort", "offset": "Offset", "customers": "Customers", "retained": "Retained",
    "logo_retention": "Logo retention", "mrr": "MRR", "revenue_retention": "Revenue retention",
    "active": "Active", "activity_retention": "Activity retention",
}  # fmt: skip


def rows_table(report: MetricsReport, columns: list[str], title: str) -> Table:
    """A table for people; every column as wide as its widest cell, so nothing is cut."""
    cells = [[format_value(name, row[name], report.currency) for name in columns]
             for row in report.rows]  # fmt: skip
    table = Table(title=title, box=box.SIMPLE_HEAVY, header_style="bold cyan")
    for index, name in enumerate(columns):
        heading = HEADINGS.get(name, name.replace("_", " "))
        widest = max([len(heading), *(len(row[index]) for row in cells)])
        left = name in ("period", "group", "cohort")
        table.add_column(
            heading, justify="left" if left else "right", no_wrap=True, min_width=widest
        )
    for row in cells:
        table.add_row(*row)
    return table


MOVEMENT_COLUMNS = (
    ("Month", "period"),
    ("Start MRR", "mrr_start"),
    ("New", "new_mrr"),
    ("Expansion", "expansion_mrr"),
    ("Reactivation", "reactivation_mrr"),
    ("Contraction", "contraction_mrr"),
    ("Churned", "churned_mrr"),
    ("Net new", "net_new_mrr"),
    ("End MRR", "mrr_end"),
    ("Customers", "customers_end"),
    ("Churn", "customer_churn_rate"),
    ("NRR", "nrr"),
)


def _movement_cell(name: str, value: Any, currency: str) -> str:
    if name == "customers_end":
        return f"{value:,}"
    return format_value(name, value, currency)


def executive_report(report: MetricsReport, company: str) -> Group:
    """Headline figures for the last period and a movement table for the periods given."""
    latest = report.rows[-1]
    currency = report.currency

    def money(value: int | None) -> str:
        return "-" if value is None else Money(value, currency).format()

    def change(value: Any) -> Text:
        if value is None:
            return Text("-")
        style = "green" if value >= 0 else "red"
        return Text(f"{Decimal(value) * 100:+.1f}%", style=style)

    headline = Table.grid(padding=(0, 3))
    for _ in range(4):
        headline.add_column()
    headline.add_row(
        Text("MRR", style="dim"),
        Text(money(latest["mrr_end"]), style="bold"),
        Text("ARR", style="dim"),
        Text(money(latest["arr"]), style="bold"),
    )
    headline.add_row(
        Text("MRR growth (MoM)", style="dim"),
        change(latest["mrr_growth"]),
        Text("MRR growth (YoY)", style="dim"),
        change(latest["mrr_growth_yoy"]),
    )
    headline.add_row(
        Text("Customers", style="dim"),
        Text(f"{latest['customers_end']:,}", style="bold"),
        Text("ARPA", style="dim"),
        Text(money(latest["arpa"])),
    )
    headline.add_row(
        Text("Customer churn", style="dim"),
        Text(format_value("customer_churn_rate", latest["customer_churn_rate"], currency)),
        Text("Net MRR churn", style="dim"),
        Text(format_value("net_mrr_churn_rate", latest["net_mrr_churn_rate"], currency)),
    )
    headline.add_row(
        Text("NRR (month)", style="dim"),
        Text(format_value("nrr", latest["nrr"], currency)),
        Text("NRR (12 months)", style="dim"),
        Text(format_value("nrr_12m", latest["nrr_12m"], currency)),
    )
    headline.add_row(
        Text("Quick ratio", style="dim"),
        Text(format_value("quick_ratio", latest["quick_ratio"], currency)),
        Text("LTV : CAC", style="dim"),
        Text(format_value("ltv_to_cac", latest["ltv_to_cac"], currency)),
    )
    table = Table(
        title=f"MRR movements ({currency}, whole units)", box=box.SIMPLE_HEAVY,
        header_style="bold cyan",
    )  # fmt: skip
    for heading, _ in MOVEMENT_COLUMNS:
        table.add_column(heading, justify="left" if heading == "Month" else "right", no_wrap=True)
    for row in report.rows:
        table.add_row(*(_movement_cell(name, row[name], currency) for _, name in MOVEMENT_COLUMNS))
    return Group(
        Panel(
            headline,
            title=f"[bold]{company}[/] · {latest['period']}",
            border_style="cyan",
            expand=False,
        ),
        table,
    )

"""Benchmark bands: the shipped file, its sources, exact figures, problems by file and line, a
user's file replacing and extending the shipped bands, KPI bands over metric bands, export."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from execmetrics.kpi.benchmarks import (
    Band,
    BandsError,
    Basis,
    band_beside,
    band_for,
    bands_to_yaml,
    load_bands,
    merge_bands,
    parse_bands,
    read_bands,
    shipped_bands,
)
from execmetrics.kpi.config import starter_kpis
from execmetrics.kpi.definitions import METRICS
from execmetrics.yaml_config import ConfigError

F = Fraction

SOURCE = """\
    source:
      publisher: Example Research
      title: Example benchmark report
      year: 2024
      url: https://example.com/report
"""

ONE = (
    """\
bands:
  - metric: customer_churn_rate
    basis: monthly
    population: SMB software
    low: "0.02"
    typical: "0.035"
    high: "0.07"
    meaning: {low: 25th percentile, typical: median, high: 75th percentile}
"""
    + SOURCE
)


def problems(text: str) -> list[str]:
    with pytest.raises(BandsError) as raised:
        parse_bands(text, "bands.yaml")
    return raised.value.problems


def band(**fields: object) -> Band:
    data: dict[str, object] = {
        "metric": "customer_churn_rate",
        "basis": "monthly",
        "population": "SMB software",
        "typical": "0.03",
        "meaning": {"typical": "median"},
        "source": {
            "publisher": "Example Research",
            "title": "Example report",
            "year": 2024,
            "url": "https://example.com/",
        },
    }
    data.update(fields)
    return Band.model_validate(data)


def test_the_shipped_bands_load_and_every_figure_has_a_dated_source() -> None:
    shipped = shipped_bands()
    assert shipped == load_bands()
    assert len(shipped) >= 5
    for each in shipped:
        assert each.metric in METRICS and each.kpi is None
        assert each.figures(), each.key
        assert each.source.publisher and each.source.title
        assert 1990 <= each.source.year <= 2100
        address = urlsplit(each.source.url)
        assert address.scheme == "https" and address.netloc, each.source.url
        values = list(each.figures().values())
        assert values == sorted(values), each.key
        for name in each.figures():
            assert getattr(each.meaning, name), (each.key, name)
    keys = [each.key for each in shipped]
    assert len(keys) == len(set(keys))


def test_the_shipped_bands_match_the_period_basis_of_their_metrics() -> None:
    by_metric = {each.metric: each for each in shipped_bands()}
    assert by_metric["customer_churn_rate"].basis is Basis.MONTHLY
    assert by_metric["nrr_12m"].basis is Basis.ANNUAL
    assert by_metric["grr_12m"].basis is Basis.ANNUAL
    assert by_metric["mrr_growth_yoy"].basis is Basis.ANNUAL
    rates = {"customer_churn_rate", "nrr_12m", "grr_12m", "mrr_growth_yoy"}
    for metric in rates & set(by_metric):
        for value in by_metric[metric].figures().values():
            assert 0 <= value <= 2, metric  # decimal fractions, not percentages


def test_the_starter_kpis_find_their_shipped_bands() -> None:
    bands = shipped_bands()
    found = {
        definition.name
        for definition in starter_kpis()
        if band_for(bands, definition.name, definition.metric) is not None
    }
    assert {"customer_churn_rate", "nrr_12m", "grr_12m", "quick_ratio", "ltv_to_cac"} <= found
    assert "expansion_rate" not in found  # a formula KPI has no band unless one names it


def test_figures_are_exact() -> None:
    (parsed,) = parse_bands(ONE, "bands.yaml")
    assert parsed.figures() == {"low": F(1, 50), "typical": F(7, 200), "high": F(7, 100)}
    assert band(typical=3).typical == 3
    assert band(typical=F(1, 4)).typical == F(1, 4)


def test_a_floating_point_figure_is_refused() -> None:
    text = ONE.replace('typical: "0.035"', "typical: 0.035")
    assert problems(text) == [
        "bands.yaml:6: bands[0] (metric customer_churn_rate): typical: write the number as a "
        "string, such as '0.035': a floating-point number cannot hold most decimals exactly"
    ]


@pytest.mark.parametrize("value", [True, "three", "NaN", F(1, 3)])
def test_a_figure_that_is_not_a_finite_decimal_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        band(typical=value)


def test_a_band_without_its_source_is_refused_with_file_and_line() -> None:
    text = ONE.removesuffix(SOURCE)
    assert problems(text) == [
        "bands.yaml:2: bands[0] (metric customer_churn_rate): source: missing: every band "
        "names its source (publisher, title, year, url)"
    ]


def test_a_source_needs_publisher_title_year_and_a_web_address() -> None:
    text = (
        ONE.replace("      publisher: Example Research\n", "")
        .replace("year: 2024", "year: 1850")
        .replace("https://example.com/report", "ftp://example.com/report")
    )
    assert problems(text) == [
        "bands.yaml:9: bands[0] (metric customer_churn_rate): source.publisher: Field required",
        "bands.yaml:11: bands[0] (metric customer_churn_rate): source.year: Input should be "
        "greater than or equal to 1990",
        "bands.yaml:12: bands[0] (metric customer_churn_rate): source.url: expected an http or "
        "https address",
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"year": "2024"}, "Input should be a valid integer"),
        ({"year": True}, "Input should be a valid integer"),
        ({"year": 2101}, "less than or equal to 2100"),
        ({"url": "https://exa mple.com/"}, "an address has no spaces"),
        ({"url": "example.com/report"}, "expected an http or https address"),
        ({"title": "  "}, "at least 1 character"),
    ],
)
def test_a_bad_source_is_refused(source: dict[str, object], message: str) -> None:
    good = {"publisher": "P", "title": "T", "year": 2024, "url": "http://example.com/"}
    with pytest.raises(ValueError, match=message):
        band(source={**good, **source})


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    text = (
        ONE.replace('low: "0.02"', 'low: "0.05"')
        + """\
  - metric: churn
    basis: monthly
    population: x
    typical: "1"
    meaning: {typical: median}
"""
        + SOURCE
        + """\
  - metric: nrr_12m
    basis: monthly
    population: x
    typical: "1"
    meaning: {typical: median}
"""
        + SOURCE
        + "extra: 1\n"
    )
    assert problems(text) == [
        "bands.yaml:34: unknown section 'extra' (expected bands)",
        "bands.yaml:2: bands[0] (metric customer_churn_rate): expected low <= typical <= high",
        "bands.yaml:14: bands[1] (metric churn): metric: unknown metric 'churn' "
        "(docs/metrics.md lists them)",
        "bands.yaml:25: bands[2] (metric nrr_12m): basis: nrr_12m compares twelve months: its "
        "figures are annual",
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kpi": "smb_churn"}, "give either metric or kpi, not both or neither"),
        ({"metric": None}, "give either metric or kpi, not both or neither"),
        ({"typical": None, "meaning": {}}, "give at least one of low, typical and high"),
        ({"low": "0.01"}, "meaning: say what low is"),
        ({"meaning": {"typical": "median", "high": "p75"}}, "high is described but not given"),
        ({"basis": "any"}, "is a rate over its period"),
        ({"basis": "weekly"}, "Input should be"),
        ({"kpi": "Bad Name", "metric": None}, "String should match pattern"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
        ({"population": ""}, "at least 1 character"),
    ],
)
def test_an_inconsistent_band_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        band(**fields)


def test_a_metric_or_kpi_named_twice_in_one_file_is_refused() -> None:
    text = ONE + ONE.removeprefix("bands:\n")
    assert problems(text) == [
        "bands.yaml:14: bands[1] (metric customer_churn_rate): metric 'customer_churn_rate' "
        "already has a band (line 2)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bands: [\n", "bands.yaml:2: not valid YAML"),
        ("", "bands.yaml:1: expected a mapping with a 'bands' list"),
        ("- a\n", "bands.yaml:1: expected a mapping with a 'bands' list"),
        ("bands: 3\n", "bands.yaml:1: bands: expected a list"),
        ("bands:\n  - 7\n", "bands.yaml:2: bands[0]: Input should be a valid dictionary"),
    ],
)
def test_a_file_that_is_not_a_list_of_bands(text: str, expected: str) -> None:
    assert problems(text)[-1].startswith(expected)


def test_an_empty_list_of_bands_is_valid() -> None:
    assert parse_bands("bands: []\n", "bands.yaml") == []


def test_a_users_file_replaces_the_shipped_band_for_its_metric_and_adds_the_others(
    tmp_path: Path,
) -> None:
    user = tmp_path / "my-bands.yaml"
    user.write_text(
        ONE
        + """\
  - kpi: smb_churn
    basis: monthly
    population: Our own target for the SMB segment
    high: "0.04"
    meaning: {high: the most we accept}
"""
        + SOURCE,
        encoding="utf-8",
    )
    shipped = shipped_bands()
    bands = load_bands(user)
    assert len(bands) == len(shipped) + 1
    churn = band_for(bands, "customer_churn_rate", "customer_churn_rate")
    assert churn is not None and churn.source.publisher == "Example Research"
    assert churn.typical == F(7, 200)
    assert [b.key for b in bands[: len(shipped)]] == [b.key for b in shipped]  # same places
    assert bands[-1].key == ("kpi", "smb_churn")
    untouched = band_for(bands, "nrr_12m", "nrr_12m")
    assert untouched == band_for(shipped, "nrr_12m", "nrr_12m") and untouched is not None
    assert [b.key for b in read_bands(user)] == [churn.key, ("kpi", "smb_churn")]


def test_a_kpi_band_wins_over_its_metrics_band() -> None:
    by_metric = band()
    by_kpi = band(metric=None, kpi="smb_churn", typical="0.02")
    for bands in ([by_metric, by_kpi], [by_kpi, by_metric]):
        assert band_for(bands, "smb_churn", "customer_churn_rate") == by_kpi
        assert band_for(bands, "enterprise_churn", "customer_churn_rate") == by_metric
    assert band_for([by_metric, by_kpi], "smb_churn", None) == by_kpi
    assert band_for([by_metric], "ratio_of_two", None) is None  # a formula KPI
    assert band_for([by_metric], "mrr", "mrr_end") is None


def test_merging_keeps_places_and_lets_a_later_band_win() -> None:
    first, second = band(), band(metric="nrr", basis="monthly")
    replacement = band(typical="0.04")
    merged = merge_bands([first, second], [replacement, band(metric=None, kpi="k")])
    assert [b.key for b in merged] == [first.key, second.key, ("kpi", "k")]
    assert merged[0] == replacement
    later = band(typical="0.05")
    assert band_for([first, later], "any", "customer_churn_rate") == later


def test_export_round_trips(tmp_path: Path) -> None:
    bands = [*shipped_bands(), band(metric=None, kpi="smb_churn", note="Our own band.")]
    text = bands_to_yaml(bands)
    assert parse_bands(text, "export.yaml") == bands
    assert "typical: '0.0515'" in text  # figures stay exact decimal strings
    file = tmp_path / "export.yaml"
    file.write_text(text, encoding="utf-8")
    assert load_bands(file) == bands


def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as raised:
        load_bands(missing)
    assert raised.value.problems[0].startswith(f"{missing}: cannot be read")


def test_a_band_is_shown_only_beside_a_value_of_a_period_like_its_figures() -> None:
    bands = load_bands()
    by_metric = {band.metric: band for band in bands}

    def beside(metric: str, period: str, among: list[Band] = bands) -> Band | None:
        return band_beside(among, "k", metric, period)

    churn = by_metric["customer_churn_rate"]
    assert beside("customer_churn_rate", "2024-03") == churn  # a month: the monthly band
    assert beside("customer_churn_rate", "2024-Q1") is None  # a quarter's churn is not a month's
    assert beside("customer_churn_rate", "2024") is None
    for period in ("2024-03", "2024-Q1", "2024"):
        assert beside("nrr_12m", period) == by_metric["nrr_12m"]  # twelve months, any period
        assert beside("ltv_to_cac", period) == by_metric["ltv_to_cac"]  # figures for any period
    annual = [churn.model_copy(update={"basis": Basis.ANNUAL})]
    assert beside("customer_churn_rate", "2024", annual) == annual[0]
    assert beside("customer_churn_rate", "2024-03", annual) is None

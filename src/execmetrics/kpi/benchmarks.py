"""Benchmark bands: industry reference figures shown beside a KPI's value (docs/benchmark-bands.md).

    bands:
      - metric: customer_churn_rate
        basis: monthly
        population: B2B subscription businesses, 2019
        typical: "0.0515"
        meaning: {typical: median}
        source: {publisher: Recurly, title: ..., year: 2019, url: https://...}

A band follows a metric of docs/metrics.md (every KPI on that metric shows it) or one KPI by
name (`kpi: NAME`, which wins over the metric's band). Every figure is exact and every band
names its source: a band without one is refused. The package ships a file of bands
(kpi/benchmarks.yaml); a file of the user's, in the same form, replaces the shipped band for
each metric or KPI it names and adds the others. Problems are reported with the file and line
of the band (and of the field, when the field is there), all of them at once.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from fractions import Fraction
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from execmetrics.kpi import formula as expression
from execmetrics.kpi.definitions import METRICS
from execmetrics.kpi.targets import ExactNumber, period_interval
from execmetrics.yaml_config import ConfigError, child_node, line_of, load_yaml, parse_items

SHIPPED = "benchmarks.yaml"
SECTIONS = ("bands",)
FIGURES = ("low", "typical", "high")

# Metrics that compare twelve months whatever the period: their figures are annual.
ANNUAL_METRICS = frozenset({"nrr_12m", "grr_12m", "mrr_growth_yoy"})
# Rates over the period itself: a figure for a month does not describe a quarter.
PERIOD_RATES = frozenset(
    {
        "customer_churn_rate",
        "gross_mrr_churn_rate",
        "net_mrr_churn_rate",
        "grr",
        "nrr",
        "mrr_growth",
    }
)


def _terminating(value: Fraction) -> Fraction:
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        raise ValueError(f"{value} has no finite decimal form; write a decimal such as '0.035'")
    return value


Figure = Annotated[ExactNumber, AfterValidator(_terminating)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Basis(StrEnum):
    """The period a figure describes: a month, a quarter, twelve months, or any period (a ratio
    or a duration that does not grow with the length of the period)."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUAL = "annual"
    ANY = "any"


class Source(BaseModel):
    """Where a band's figures were published: no number without a source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    publisher: Text
    title: Text
    year: Annotated[int, Field(strict=True, ge=1990, le=2100)]
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    reports: Text | None = None  # the study whose figures the page reports, when not its own

    @field_validator("url")
    @classmethod
    def _web_address(cls, url: str) -> str:
        if any(character.isspace() for character in url):
            raise ValueError("an address has no spaces")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an http or https address")
        return url


class Meaning(BaseModel):
    """What each figure of a band is, such as 'median' or 'top quartile'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: Text | None = None
    typical: Text | None = None
    high: Text | None = None


class Band(BaseModel):
    """Reference figures for a metric (or one KPI): at least one of low, typical and high, in
    that order of size, each with its meaning, and the source they come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str | None = None
    kpi: Annotated[str | None, Field(pattern=rf"^{expression.NAME_PATTERN}$", max_length=64)] = None
    basis: Basis
    population: Text
    low: Figure | None = None
    typical: Figure | None = None
    high: Figure | None = None
    meaning: Meaning
    source: Source
    note: LongText | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str | None) -> str | None:
        if metric is not None and metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r} (docs/metrics.md lists them)")
        return metric

    @field_validator("basis")
    @classmethod
    def _basis_of_the_metric(cls, basis: Basis, info: ValidationInfo) -> Basis:
        metric = info.data.get("metric")
        if metric in ANNUAL_METRICS and basis is not Basis.ANNUAL:
            raise ValueError(f"{metric} compares twelve months: its figures are annual")
        if metric in PERIOD_RATES and basis is Basis.ANY:
            raise ValueError(
                f"{metric} is a rate over its period: give monthly, quarterly or annual"
            )
        return basis

    @model_validator(mode="before")
    @classmethod
    def _sourced(cls, data: Any) -> Any:
        if isinstance(data, dict) and "source" not in data:
            raise ValueError(
                "source: missing: every band names its source (publisher, title, year, url)"
            )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.metric is None) == (self.kpi is None):
            raise ValueError("give either metric or kpi, not both or neither")
        given = [name for name in FIGURES if getattr(self, name) is not None]
        if not given:
            raise ValueError("give at least one of low, typical and high")
        for name in FIGURES:
            described = getattr(self.meaning, name) is not None
            if name in given and not described:
                raise ValueError(f"meaning: say what {name} is, such as 'median'")
            if described and name not in given:
                raise ValueError(f"meaning: {name} is described but not given")
        values = [getattr(self, name) for name in given]
        if values != sorted(values):
            raise ValueError("expected low <= typical <= high")
        return self

    @property
    def key(self) -> tuple[str, str]:
        """('kpi', NAME) or ('metric', NAME): what the band applies to."""
        if self.kpi is not None:
            return ("kpi", self.kpi)
        assert self.metric is not None
        return ("metric", self.metric)

    def figures(self) -> dict[str, Fraction]:
        """The figures the band gives, by name, in order of size."""
        return {name: value for name in FIGURES if (value := getattr(self, name)) is not None}


class BandsError(ConfigError):
    """A bands file that cannot be used; each line of the message names file and line."""


@functools.cache
def shipped_bands() -> list[Band]:
    """The bands shipped with execmetrics (kpi/benchmarks.yaml), read once per process."""
    resource = files("execmetrics.kpi") / SHIPPED
    return parse_bands(resource.read_text(encoding="utf-8"), SHIPPED)


def read_bands(path: Path) -> list[Band]:
    """The bands of one file, on its own."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BandsError([f"{path}: cannot be read ({error})"]) from None
    return parse_bands(text, str(path))


def load_bands(path: Path | None = None) -> list[Band]:
    """The shipped bands, with those of the user's file at `path` (when given) replacing the
    shipped band for each metric or KPI it names and adding the others."""
    shipped = shipped_bands()
    return shipped if path is None else merge_bands(shipped, read_bands(path))


def merge_bands(base: list[Band], overrides: list[Band]) -> list[Band]:
    """`base` with each band of `overrides` in place of the band for the same metric or KPI,
    and the others added after it; a later band for the same key wins."""
    merged = {band.key: band for band in base}
    for band in overrides:
        merged[band.key] = band
    return list(merged.values())


def band_for(bands: list[Band], kpi_name: str, metric: str | None) -> Band | None:
    """The band shown beside a KPI: one named for the KPI itself, else one for its metric (a
    formula KPI, whose metric is None, has none). A later band for the same key wins."""
    by_kpi: Band | None = None
    by_metric: Band | None = None
    for band in bands:
        if band.kpi is not None and band.kpi == kpi_name:
            by_kpi = band
        elif metric is not None and band.metric == metric:
            by_metric = band
    return by_kpi if by_kpi is not None else by_metric


BASIS_OF_INTERVAL = {"month": Basis.MONTHLY, "quarter": Basis.QUARTERLY, "year": Basis.ANNUAL}


def band_beside(bands: list[Band], kpi_name: str, metric: str | None, period: str) -> Band | None:
    """The band to show beside a KPI's value for `period` (a label such as 2025-11): its band,
    when the band's figures describe a period like it. A monthly churn band says nothing about
    a quarter's churn; a 12-month metric's annual band fits any period."""
    band = band_for(bands, kpi_name, metric)
    if band is None or band.basis is Basis.ANY:
        return band
    if band.basis is Basis.ANNUAL and metric in ANNUAL_METRICS:
        return band
    return band if band.basis is BASIS_OF_INTERVAL[period_interval(period)] else None


def bands_to_yaml(bands: list[Band]) -> str:
    """The YAML of a set of bands, in the form parse_bands reads."""
    items = [band.model_dump(mode="json", exclude_none=True) for band in bands]
    body = yaml.safe_dump({"bands": items}, sort_keys=False, allow_unicode=True, width=100)
    return "# Benchmark bands (docs/benchmark-bands.md); every figure names its source.\n" + body


def parse_bands(text: str, source: str) -> list[Band]:
    """The bands of a YAML text; `source` names it in the problems reported."""
    try:
        document, data = load_yaml(text, source, "a mapping with a 'bands' list")
    except ConfigError as error:
        raise BandsError(error.problems) from None
    problems = [
        f"{source}:{line_of(document, (key,))}: unknown section {key!r} "
        f"(expected {', '.join(SECTIONS)})"
        for key in data
        if key not in SECTIONS
    ]
    parsed = parse_items(
        document, data, "bands", Band.model_validate, source, problems, name=_named
    )
    nodes = child_node(document, "bands")
    bands: list[Band] = []
    first_line: dict[tuple[str, str], int] = {}
    for index, band in enumerate(parsed if not problems else []):
        line = line_of(nodes, (index,)) if nodes is not None else 1
        if band.key in first_line:
            kind, name = band.key
            problems.append(
                f"{source}:{line}: bands[{index}]{_named(band.model_dump())}: {kind} {name!r} "
                f"already has a band (line {first_line[band.key]})"
            )
            continue
        first_line[band.key] = line
        bands.append(band)
    if problems:
        raise BandsError(problems)
    return bands


def _named(item: object) -> str:
    if isinstance(item, dict):
        for kind in ("kpi", "metric"):
            if isinstance(item.get(kind), str):
                return f" ({kind} {item[kind]})"
    return ""

"""Customer segments by k-means (scikit-learn) over behaviour features (docs/segments.md).

Each numeric feature is log-scaled when it is never negative (log(1 + x): MRR, tenure and
counts are skewed, and a customer with ten times the logins is not ten times as different),
then standardised. k is 5 by default, or the k from 2 to 8 with the highest silhouette.
Segments are numbered by size, largest first. A segment of a table the company brings is
named by the features its centre stands out on; a segment of the built-in behaviour
features gets one of the canonical names (power users, steady, new, at risk, inactive) by
its centre's standing. The same data and seed give the same segments, names and
assignments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from execmetrics.analytics.feature_table import FeatureTable

DEFAULT_K = 5
K_RANGE = range(2, 9)
# The silhouette compares every pair of points: on more customers it is measured on a
# sample of this many, drawn with the seed.
SILHOUETTE_SAMPLE = 10_000
# A centre stands out on a feature from half a standard deviation on.
STANDS_OUT = 0.5
NAMED_FEATURES = 2
K_MEANS_STARTS = 4
MRR_COLUMN = "mrr"

POWER_USERS, STEADY, NEW, AT_RISK, INACTIVE = "power users", "steady", "new", "at risk", "inactive"
CANONICAL_NAMES = (POWER_USERS, STEADY, NEW, AT_RISK, INACTIVE)
USE_FEATURES = ("logins_30d", "feature_breadth_90d")
TENURE_FEATURE = "tenure_days"
TICKETS_FEATURE = "tickets_90d"
CANONICAL_FEATURES = (*USE_FEATURES, TENURE_FEATURE, TICKETS_FEATURE)
# The names given by score; on equal scores the earlier name wins. Steady takes what is left.
SCORED_NAMES = (INACTIVE, POWER_USERS, NEW, AT_RISK)

Matrix = npt.NDArray[np.float64]


class SegmentsError(ValueError):
    """A segmentation that cannot be made; the message starts with the parameter's name."""


@dataclass(frozen=True)
class Segment:
    number: int  # 1 is the largest
    name: str
    size: int
    centre: dict[str, float]  # the median member's value of each feature, in its own units
    centroid: dict[str, float]  # the k-means centre, mapped back to each feature's units
    standing: dict[str, float]  # the centre in standard deviations from the mean
    # The members' summed `mrr` column, when the table has one: whole minor units (an int)
    # when the segmentation has a currency.
    mrr: int | float | None


@dataclass(frozen=True)
class Segmentation:
    rows: int
    features: list[str]
    ignored: list[str]  # category columns, which k-means cannot use
    k: int
    chosen_by: str  # "default", "given" or "silhouette"
    silhouette: float
    silhouettes: dict[int, float]  # by k, when k was chosen by silhouette
    segments: list[Segment]
    assignments: dict[str, int]  # segment number by row id
    naming: str = "descriptive"  # or "canonical"
    currency: str | None = None  # of the `mrr` column, in minor units, when it is money
    as_of: date | None = None  # of the built-in features
    notes: list[str] = field(default_factory=list)  # what the reader should know

    def names(self) -> dict[int, str]:
        return {found.number: found.name for found in self.segments}


@dataclass(frozen=True)
class _Scaling:
    """How the features were prepared, to map a centre back to the features' units."""

    mean: Matrix
    scale: Matrix
    logged: npt.NDArray[np.bool_]

    def original(self, standing: Matrix) -> Matrix:
        values = standing * self.scale + self.mean
        # A log-scaled feature was never negative: below 0 is only rounding (and -0.0).
        restored: Matrix = np.where(self.logged, np.maximum(np.expm1(values), 0.0), values)
        return restored


def segment_customers(
    table: FeatureTable,
    k: int | None = DEFAULT_K,
    seed: int = 0,
    given: bool = False,
    *,
    canonical: bool = False,
    currency: str | None = None,
) -> Segmentation:
    """Segments of the table's rows; `k=None` chooses k by silhouette. `canonical` names the
    segments with the canonical names (the table must have the built-in behaviour
    features); `currency` says the `mrr` column is money in its minor units."""
    # One thread: k-means' OpenMP threads spin while they wait for a busy core, which made
    # choosing k on a loaded two-core machine twenty times slower.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _segmented(table, k, seed, given, canonical, currency)


def _segmented(
    table: FeatureTable,
    k: int | None,
    seed: int,
    given: bool,
    canonical: bool,
    currency: str | None,
) -> Segmentation:
    features = list(table.numeric)
    if not features:
        raise SegmentsError("features: the table has no numeric feature columns")
    missing = [name for name in CANONICAL_FEATURES if name not in table.numeric]
    if canonical and missing:
        raise SegmentsError(f"features: canonical names need the columns {', '.join(missing)}")
    if k is not None and not 2 <= k <= len(table) - 1:
        raise SegmentsError(f"k: expected 2 to {len(table) - 1} for {len(table)} rows, got {k}")
    matrix, scaling = _prepared(np.column_stack([table.numeric[name] for name in features]))
    silhouettes: dict[int, float] = {}
    if k is None:
        candidates = [n for n in K_RANGE if n < len(table)]
        if not candidates:
            raise SegmentsError(f"k: {len(table)} rows are too few to choose k from 2 to 8")
        fits = {n: _k_means(matrix, n, seed) for n in candidates}
        silhouettes = {n: _silhouette(matrix, labels, seed) for n, labels in fits.items()}
        k = max(candidates, key=lambda n: (silhouettes[n], -n))
        labels = fits[k]
    else:
        labels = _k_means(matrix, k, seed)
    chosen_by = "silhouette" if silhouettes else ("given" if given else "default")
    numbers = _numbered(labels, matrix)
    segments = [
        _segment(number, members, table, features, matrix, scaling, currency is not None)
        for number, members in sorted(numbers.items())
    ]
    if canonical:
        segments = _canonically_named(segments)
    segments = _distinct_names(segments)
    assignments = {
        row_id: number for number, members in numbers.items() for row_id in
        (table.ids[i] for i in members)
    }  # fmt: skip
    return Segmentation(
        rows=len(table),
        features=features,
        ignored=list(table.categorical),
        k=k,
        chosen_by=chosen_by,
        silhouette=silhouettes[k] if silhouettes else _silhouette(matrix, labels, seed),
        silhouettes=silhouettes,
        segments=segments,
        assignments=dict(sorted(assignments.items())),
        naming="canonical" if canonical else "descriptive",
        currency=currency,
    )


def _prepared(values: Matrix) -> tuple[Matrix, _Scaling]:
    """Blanks as the column's median, log(1 + x) for never-negative columns, standardised."""
    filled = values.copy()
    logged = np.zeros(filled.shape[1], dtype=bool)
    for column in range(filled.shape[1]):
        blank = np.isnan(filled[:, column])
        if blank.all():
            filled[:, column] = 0.0
        elif blank.any():
            filled[blank, column] = np.nanmedian(filled[:, column])
        if filled[:, column].min() >= 0:
            filled[:, column] = np.log1p(filled[:, column])
            logged[column] = True
    scaler = StandardScaler()
    scaled: Matrix = scaler.fit_transform(filled)
    return scaled, _Scaling(scaler.mean_, scaler.scale_, logged)


def _k_means(matrix: Matrix, k: int, seed: int) -> npt.NDArray[np.int_]:
    model = KMeans(n_clusters=k, n_init=K_MEANS_STARTS, random_state=seed)
    labels: npt.NDArray[np.int_] = model.fit_predict(matrix)
    return labels


def _silhouette(matrix: Matrix, labels: npt.NDArray[np.int_], seed: int) -> float:
    if len(set(labels.tolist())) < 2:
        return 0.0
    sample = SILHOUETTE_SAMPLE if len(matrix) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(matrix, labels, sample_size=sample, random_state=seed))


def _numbered(labels: npt.NDArray[np.int_], matrix: Matrix) -> dict[int, npt.NDArray[np.int_]]:
    """Clusters numbered 1, 2, ... by size, largest first; equal sizes by their centres, so
    the numbering does not depend on k-means' own arbitrary labels."""
    clusters = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    clusters.sort(key=lambda members: (-len(members), tuple(matrix[members].mean(axis=0))))
    return {number: members for number, members in enumerate(clusters, start=1)}


def _segment(
    number: int,
    members: npt.NDArray[np.int_],
    table: FeatureTable,
    features: list[str],
    matrix: Matrix,
    scaling: _Scaling,
    money: bool,
) -> Segment:
    centre_standing = matrix[members].mean(axis=0)
    standing = dict(zip(features, centre_standing.tolist(), strict=True))
    centroid = dict(zip(features, scaling.original(centre_standing).tolist(), strict=True))
    centre = {name: float(np.nanmedian(table.numeric[name][members])) for name in features}
    mrr = table.numeric.get(MRR_COLUMN)
    total: int | float | None = None
    if mrr is not None and money:
        # Money is whole minor units: summed as integers, so the total is exact.
        total = int(np.rint(mrr[members]).astype(np.int64).sum())
    elif mrr is not None:
        total = float(np.nansum(mrr[members]))
    return Segment(
        number=number,
        name=segment_name(standing),
        size=len(members),
        centre=centre,
        centroid=centroid,
        standing=standing,
        mrr=total,
    )


def segment_name(standing: Mapping[str, float]) -> str:
    """The features the centre stands out on most, high or low ("high logins, low
    tickets"); "typical" when it stands out on none."""
    notable = sorted(
        (name for name, value in standing.items() if abs(value) >= STANDS_OUT),
        key=lambda name: (-abs(standing[name]), name),
    )[:NAMED_FEATURES]
    if not notable:
        return "typical"
    return ", ".join(f"{'high' if standing[name] > 0 else 'low'} {name}" for name in notable)


def canonical_scores(standing: Mapping[str, float]) -> dict[str, float]:
    """How well a centre fits each scored canonical name, in standard deviations. Use is
    the mean standing of logins and feature breadth."""
    use = sum(standing[name] for name in USE_FEATURES) / len(USE_FEATURES)
    return {
        INACTIVE: -use,
        POWER_USERS: use,
        NEW: -standing[TENURE_FEATURE],
        # Tickets out of proportion to use: struggling, or using less than it did.
        AT_RISK: standing[TICKETS_FEATURE] - use,
    }


def canonical_names(standings: Sequence[Mapping[str, float]]) -> list[str | None]:
    """The canonical name of each centre (in segment order), None for a segment beyond them.

    While more than one segment is unnamed and a scored name is unused, the best-fitting
    (segment, name) pair left is matched: the highest score, then the earlier name in
    SCORED_NAMES, then the earlier segment. The unnamed segment nearest the overall centre
    (smallest sum of squared standings, then the earlier segment) is "steady". With k = 5
    every segment gets a name; with k < 5 some names go unused; with k > 5 the segments
    beyond the five get None.
    """
    scores = [canonical_scores(standing) for standing in standings]
    names: list[str | None] = [None] * len(standings)
    unused = list(SCORED_NAMES)

    def fit(pair: tuple[int, str]) -> tuple[float, int, int]:
        index, name = pair
        return scores[index][name], -SCORED_NAMES.index(name), -index

    while unused and names.count(None) > 1:
        index, name = max(
            ((index, name) for index, current in enumerate(names) if current is None
             for name in unused),
            key=fit,
        )  # fmt: skip
        names[index] = name
        unused.remove(name)
    left = [index for index, name in enumerate(names) if name is None]
    if left:
        names[min(left, key=lambda index: (_distance(standings[index]), index))] = STEADY
    return names


def _distance(standing: Mapping[str, float]) -> float:
    """Squared distance of a centre from the overall centre, in standard deviations."""
    return sum(value * value for value in standing.values())


def _canonically_named(segments: list[Segment]) -> list[Segment]:
    """Canonical names where the rule gives one; the descriptive name beyond them."""
    names = canonical_names([found.standing for found in segments])
    return [
        found if name is None else replace(found, name=name)
        for found, name in zip(segments, names, strict=True)
    ]


def _distinct_names(segments: list[Segment]) -> list[Segment]:
    """Segments that share a name are told apart by their number."""
    counts: dict[str, int] = {}
    for found in segments:
        counts[found.name] = counts.get(found.name, 0) + 1
    return [
        replace(found, name=f"{found.name} ({found.number})") if counts[found.name] > 1 else found
        for found in segments
    ]


def segmentation_document(result: Segmentation) -> dict[str, object]:
    def figure(value: float) -> float:
        return round(value, 4)

    def in_units(values: dict[str, float]) -> dict[str, float | int]:
        # Money is shown in whole minor units, like every amount the product prints.
        return {
            name: round(value) if name == MRR_COLUMN and result.currency else round(value, 6)
            for name, value in values.items()
        }

    def total(mrr: int | float | None) -> int | float | None:
        return mrr if mrr is None or isinstance(mrr, int) else round(mrr, 6)

    document: dict[str, object] = {"rows": result.rows}
    if result.as_of is not None:
        document["as_of"] = result.as_of.isoformat()
    if result.currency is not None:
        document["currency"] = result.currency
    return document | {
        "features": result.features,
        "ignored": result.ignored,
        "k": result.k,
        "chosen_by": result.chosen_by,
        "naming": result.naming,
        "silhouette": figure(result.silhouette),
        "silhouettes": {str(k): figure(value) for k, value in result.silhouettes.items()},
        "notes": result.notes,
        "segments": [
            {
                "segment": found.number,
                "name": found.name,
                "size": found.size,
                "share": figure(found.size / result.rows),
                "mrr": total(found.mrr),
                "centroid": in_units(found.centroid),
                "centre": in_units(found.centre),
                "standing": {name: figure(value) for name, value in found.standing.items()},
            }
            for found in result.segments
        ],
    }

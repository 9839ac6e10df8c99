"""Customer segments by k-means (scikit-learn) over behaviour features (docs/segments.md).

Each numeric feature is log-scaled when it is never negative (log(1 + x): MRR, tenure and
counts are skewed, and a customer with ten times the logins is not ten times as different),
then standardised. k is 5 by default, or the k from 2 to 8 with the highest silhouette. A
segment is named by the features its centre stands out on, and numbered by size, largest
first; the same data and seed give the same segments, names and assignments.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

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


class SegmentsError(ValueError):
    """A segmentation that cannot be made; the message names the parameter."""


@dataclass(frozen=True)
class Segment:
    number: int  # 1 is the largest
    name: str
    size: int
    centre: dict[str, float]  # the median member's value of each feature, in its own units
    standing: dict[str, float]  # the centre in standard deviations from the mean
    mrr: float | None  # the members' summed `mrr` column, when the table has one


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


def segment_customers(
    table: FeatureTable, k: int | None = DEFAULT_K, seed: int = 0, given: bool = False
) -> Segmentation:
    """Segments of the table's rows; `k=None` chooses k by silhouette."""
    features = list(table.numeric)
    if not features:
        raise SegmentsError("features: the table has no numeric feature columns")
    if k is not None and not 2 <= k <= len(table) - 1:
        raise SegmentsError(f"k: expected 2 to {len(table) - 1} for {len(table)} rows, got {k}")
    matrix = _prepared(np.column_stack([table.numeric[name] for name in features]))
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
    segments = _distinct_names(
        [
            _segment(number, members, table, features, matrix)
            for number, members in sorted(numbers.items())
        ]
    )
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
    )


def _prepared(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Blanks as the column's median, log(1 + x) for never-negative columns, standardised."""
    filled = values.copy()
    for column in range(filled.shape[1]):
        blank = np.isnan(filled[:, column])
        if blank.all():
            filled[:, column] = 0.0
        elif blank.any():
            filled[blank, column] = np.nanmedian(filled[:, column])
        if filled[:, column].min() >= 0:
            filled[:, column] = np.log1p(filled[:, column])
    scaled: npt.NDArray[np.float64] = StandardScaler().fit_transform(filled)
    return scaled


def _k_means(matrix: npt.NDArray[np.float64], k: int, seed: int) -> npt.NDArray[np.int_]:
    model = KMeans(n_clusters=k, n_init=K_MEANS_STARTS, random_state=seed)
    labels: npt.NDArray[np.int_] = model.fit_predict(matrix)
    return labels


def _silhouette(matrix: npt.NDArray[np.float64], labels: npt.NDArray[np.int_], seed: int) -> float:
    if len(set(labels.tolist())) < 2:
        return 0.0
    sample = SILHOUETTE_SAMPLE if len(matrix) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(matrix, labels, sample_size=sample, random_state=seed))


def _numbered(
    labels: npt.NDArray[np.int_], matrix: npt.NDArray[np.float64]
) -> dict[int, npt.NDArray[np.int_]]:
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
    matrix: npt.NDArray[np.float64],
) -> Segment:
    standing = dict(zip(features, matrix[members].mean(axis=0).tolist(), strict=True))
    centre = {name: float(np.nanmedian(table.numeric[name][members])) for name in features}
    mrr = table.numeric.get(MRR_COLUMN)
    return Segment(
        number=number,
        name=segment_name(standing),
        size=len(members),
        centre=centre,
        standing=standing,
        mrr=None if mrr is None else float(np.nansum(mrr[members])),
    )


def segment_name(standing: dict[str, float]) -> str:
    """The features the centre stands out on most, high or low ("high logins, low
    tickets"); "typical" when it stands out on none."""
    notable = sorted(
        (name for name, value in standing.items() if abs(value) >= STANDS_OUT),
        key=lambda name: (-abs(standing[name]), name),
    )[:NAMED_FEATURES]
    if not notable:
        return "typical"
    return ", ".join(f"{'high' if standing[name] > 0 else 'low'} {name}" for name in notable)


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

    return {
        "rows": result.rows,
        "features": result.features,
        "ignored": result.ignored,
        "k": result.k,
        "chosen_by": result.chosen_by,
        "silhouette": figure(result.silhouette),
        "silhouettes": {str(k): figure(value) for k, value in result.silhouettes.items()},
        "segments": [
            {
                "segment": found.number,
                "name": found.name,
                "size": found.size,
                "share": figure(found.size / result.rows),
                "centre": {name: round(value, 6) for name, value in found.centre.items()},
                "standing": {name: figure(value) for name, value in found.standing.items()},
                "mrr": None if found.mrr is None else round(found.mrr, 6),
            }
            for found in result.segments
        ],
    }

"""A table of features and a churn label that a company brings (CSV), read for the churn
models: a column whose every value is a number (or blank) is numeric, any other is a category.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

POSITIVE = frozenset({"1", "yes", "y", "true", "churned"})
NEGATIVE = frozenset({"0", "no", "n", "false", "active"})
MISSING_CATEGORY = "(missing)"


class FeatureTableError(ValueError):
    """A feature table that cannot be used; the message names the file, line and column."""


@dataclass(frozen=True)
class FeatureTable:
    ids: list[str]
    numeric: dict[str, npt.NDArray[np.float64]]  # by column; NaN where blank
    categorical: dict[str, list[str]]  # by column; MISSING_CATEGORY where blank
    label: npt.NDArray[np.int_] | None  # 1: churned; None for a table read without a label

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def feature_names(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def read_feature_table(path: Path, label: str | None, id_column: str) -> FeatureTable:
    """Every row of the file: `id_column` identifies it, `label` (if given) says whether it
    churned (1, yes, true, churned; or 0, no, false, active), every other column is a
    feature."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or ())
            _check_header(path, header, label, id_column)
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FeatureTableError(f"{path}: cannot read the feature table: {error}") from error
    if not rows:
        raise FeatureTableError(f"{path}: the feature table has no rows")
    ids = [_id(path, line, row, id_column) for line, row in rows]
    _check_unique(path, rows, ids, id_column)
    labels = None
    if label is not None:
        labels = np.array([_label(path, line, row, label) for line, row in rows], dtype=int)
        if labels.min() == labels.max():
            raise FeatureTableError(
                f"{path}: column {label}: every row has the same label; both churned and "
                "retained customers are needed"
            )
    numeric: dict[str, npt.NDArray[np.float64]] = {}
    categorical: dict[str, list[str]] = {}
    for column in header:
        if column in (label, id_column):
            continue
        texts = [(row.get(column) or "").strip() for _, row in rows]
        numbers = _numbers(texts)
        if numbers is not None:
            numeric[column] = numbers
        else:
            categorical[column] = [text or MISSING_CATEGORY for text in texts]
    if not numeric and not categorical:
        raise FeatureTableError(f"{path}:1: the table has no feature columns")
    return FeatureTable(ids, numeric, categorical, labels)


def _check_header(path: Path, header: list[str], label: str | None, id_column: str) -> None:
    for option, column in (("--label", label), ("--id", id_column)):
        if column is not None and column not in header:
            raise FeatureTableError(
                f"{path}:1: {option}: no column named {column!r} (columns: {', '.join(header)})"
            )
    if label == id_column:
        raise FeatureTableError(f"{path}:1: --label and --id name the same column {label!r}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise FeatureTableError(f"{path}:1: columns named twice: {', '.join(repeated)}")


def _id(path: Path, line: int, row: dict[str, str | None], column: str) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise FeatureTableError(f"{path}:{line}: {column}: the id is blank")
    return value


def _check_unique(path: Path, rows: list[tuple[int, dict[str, str | None]]], ids: list[str],
                  column: str) -> None:  # fmt: skip
    seen: dict[str, int] = {}
    for (line, _), value in zip(rows, ids, strict=True):
        if value in seen:
            raise FeatureTableError(
                f"{path}:{line}: {column}: {value!r} is also on line {seen[value]}"
            )
        seen[value] = line


def _label(path: Path, line: int, row: dict[str, str | None], column: str) -> int:
    value = (row.get(column) or "").strip()
    if value.lower() in POSITIVE:
        return 1
    if value.lower() in NEGATIVE:
        return 0
    raise FeatureTableError(
        f"{path}:{line}: {column}: expected a churn label (1, yes, true or churned; 0, no, "
        f"false or active), got {value!r}"
    )


def _numbers(texts: list[str]) -> npt.NDArray[np.float64] | None:
    """The column as numbers (NaN where blank), or None if a value is not a finite number
    or the column is blank throughout."""
    found = np.full(len(texts), np.nan)
    present = False
    for index, text in enumerate(texts):
        if not text:
            continue
        try:
            number = float(text)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        found[index] = number
        present = True
    return found if present else None

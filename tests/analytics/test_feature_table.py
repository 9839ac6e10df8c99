"""Reading a feature table a company brings: numbers, categories, labels, clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from execmetrics.analytics.feature_table import (
    MISSING_CATEGORY,
    FeatureTableError,
    read_feature_table,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "features.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_columns_are_numbers_or_categories_and_labels_are_read_in_words(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "id,plan,logins,mrr,churned\n"
        "a,pro,12,49.5,no\n"
        "b,,3, ,Yes\n"
        "c,starter,0,19,TRUE\n"
        "d,pro,7,49.5,0\n",
    )
    table = read_feature_table(path, "churned", "id")
    assert table.ids == ["a", "b", "c", "d"]
    assert list(table.label) == [0, 1, 1, 0]
    assert list(table.numeric) == ["logins", "mrr"]
    assert list(table.numeric["logins"]) == [12, 3, 0, 7]
    assert math.isnan(table.numeric["mrr"][1])
    assert table.categorical == {"plan": ["pro", MISSING_CATEGORY, "starter", "pro"]}
    assert table.feature_names == ["logins", "mrr", "plan"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,x\na,1\n", ":1: --label: no column named 'churned' (columns: id, x)"),
        ("key,x,churned\na,1,no\n", ":1: --id: no column named 'id'"),
        ("id,x,x,churned\na,1,2,no\n", ":1: columns named twice: x"),
        ("id,x,churned\n", ": the feature table has no rows"),
        ("id,x,churned\na,1,no\n,2,yes\n", ":3: id: the id is blank"),
        ("id,x,churned\na,1,no\na,2,yes\n", ":3: id: 'a' is also on line 2"),
        ("id,x,churned\na,1,no\nb,2,maybe\n", ":3: churned: expected a churn label"),
        ("id,x,churned\na,1,no\nb,2,no\n", ": column churned: every row has the same label"),
        ("id,churned\na,no\nb,yes\n", ":1: the table has no feature columns"),
    ],
)
def test_a_bad_table_is_refused_naming_the_line_and_column(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FeatureTableError) as raised:
        read_feature_table(path, "churned", "id")
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


def test_the_same_column_for_label_and_id_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "id,x\na,1\n")
    with pytest.raises(FeatureTableError, match="--label and --id name the same column 'id'"):
        read_feature_table(path, "id", "id")


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FeatureTableError, match="cannot read the feature table"):
        read_feature_table(tmp_path / "absent.csv", "churned", "id")

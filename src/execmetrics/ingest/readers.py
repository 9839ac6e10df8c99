"""Reading input files: CSV or JSON Lines, optionally gzip-compressed, as rows of strings."""

from __future__ import annotations

import csv
import gzip
import json
import operator
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import IO, TypeVar

from execmetrics.ingest.problems import RowError

Row = dict[str, str | None]
# A record as a tuple of named columns in a fixed order: for data sets too large for a dict
# per row (activity events).
Record = tuple[str | None, ...]
T = TypeVar("T")

KINDS = (
    "fx_rates", "customers", "marketing_spend", "subscription_events", "support_tickets",
    "activity_events",
)  # fmt: skip
SUFFIXES = (".csv", ".jsonl", ".ndjson")


class FileError(ValueError):
    """A whole file cannot be read (empty, not UTF-8, not CSV or JSON Lines)."""

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def kind_of(path: Path) -> str | None:
    """The data set a file holds, from its name: `customers.csv`, `fx_rates.jsonl.gz`..."""
    name = path.name.removesuffix(".gz")
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            stem = name.removesuffix(suffix)
            return stem if stem in KINDS else None
    return None


def _open_text(path: Path) -> IO[str]:
    # utf-8-sig: spreadsheets often start "CSV UTF-8" files with a byte order mark.
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="strict", newline="")
    return path.open("r", encoding="utf-8-sig", errors="strict", newline="")


def scalar_text(value: object, column: str) -> str | None:
    # Money and counts are validated as text, so a JSON 49.0 is refused like a CSV "49.0".
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise RowError(column, f"expected a single value, got {type(value).__name__}")


def read_rows(path: Path) -> Iterator[tuple[int, Row | RowError]]:
    """Yields (line number, row) per record; a row that cannot be parsed comes as a RowError.

    A record is numbered by the line it starts on. Raises FileError for problems that make
    the whole file unreadable.
    """
    if path.name.removesuffix(".gz").endswith((".jsonl", ".ndjson")):
        yield from _guarded(path, _json_rows)
    else:
        yield from _guarded(path, _csv_rows)


def _guarded(
    path: Path, rows: Callable[[IO[str], list[int]], Iterator[tuple[int, T | RowError]]]
) -> Iterator[tuple[int, T | RowError]]:
    position = [0]  # the line the current record starts on, kept up to date by `rows`
    try:
        with _open_text(path) as text:
            yield from rows(text, position)
    except UnicodeDecodeError:
        raise FileError(_first_non_utf8_line(path), "not UTF-8 text") from None
    except csv.Error as error:
        raise FileError(position[0] or None, f"not valid CSV: {error}") from None
    except (OSError, EOFError) as error:
        raise FileError(None, f"cannot read: {error}") from None


def _csv_rows(text: IO[str], position: list[int]) -> Iterator[tuple[int, Row | RowError]]:
    def as_row(header: list[str]) -> Callable[[list[str]], Row]:
        return lambda values: dict(zip(header, values, strict=True))

    yield from _csv_records(text, position, as_row)


def _csv_records(
    text: IO[str],
    position: list[int],
    shape: Callable[[list[str]], Callable[[list[str]], T]],
) -> Iterator[tuple[int, T | RowError]]:
    """CSV records, each made by `shape(header)` from the record's fields."""
    reader = csv.reader(text, strict=True)
    position[0] = 1
    header = next(reader, None)
    if header is None:
        raise FileError(None, "empty file: expected a header row")
    header = [name.strip() for name in header]
    _check_header(header)
    record_of = shape(header)
    width = len(header)
    records = 0
    while True:
        position[0] = reader.line_num + 1
        values = next(reader, None)
        if values is None:
            break
        if not values:
            continue
        records += 1
        line = position[0]
        if len(values) > width:
            yield line, RowError(None, "more fields than the header has columns")
            continue
        if len(values) < width:
            # A short record leaves its last columns empty; the header still names them.
            values += [""] * (width - len(values))
        if "\x00" in "".join(values):
            column = header[next(i for i, value in enumerate(values) if "\x00" in value)]
            yield line, RowError(column, "contains a NUL character")
            continue
        yield line, record_of(values)
    if records == 0:
        raise FileError(None, "empty file: a header but no rows")


def read_records(
    path: Path, columns: Sequence[str], required: Sequence[str]
) -> Iterator[tuple[int, Record | RowError]]:
    """Like read_rows, but each record as a tuple of `columns` in that order, None where the
    file lacks a column. A CSV header without a required column is a FileError."""
    if path.name.removesuffix(".gz").endswith((".jsonl", ".ndjson")):
        for line, row in read_rows(path):
            yield line, (row if isinstance(row, RowError) else record_of_row(row, columns))
        return
    picker = partial(_picker, columns, required)
    yield from _guarded(path, partial(_csv_records, shape=picker))


def record_of_row(row: Row, columns: Sequence[str]) -> Record:
    return tuple(row.get(column) for column in columns)


def _picker(
    columns: Sequence[str], required: Sequence[str], header: list[str]
) -> Callable[[list[str]], Record]:
    missing = [column for column in required if column not in header]
    if missing:
        raise FileError(
            1, f"required column {', '.join(map(repr, missing))} missing from the header"
        )
    # An absent optional column reads as an empty field: one past the end of a padded record.
    positions = [header.index(column) if column in header else len(header) for column in columns]
    pick = operator.itemgetter(*positions)

    def record(values: list[str]) -> Record:
        values.append("")
        return pick(values)  # type: ignore[no-any-return]

    return record


def _nul_column(row: Row) -> str | None:
    for column, value in row.items():
        if value is not None and "\x00" in value:
            return column
    return None


def _first_non_utf8_line(path: Path) -> int | None:
    # The text decoder reads ahead in blocks, so find the exact line by rescanning bytes.
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as raw:
        for line_no, line in enumerate(raw, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return line_no
    return None


def _check_header(fieldnames: list[str] | tuple[str, ...]) -> None:
    seen: set[str] = set()
    for name in fieldnames:
        if name in seen:
            raise FileError(1, f"column {name!r} appears twice in the header")
        seen.add(name)


def _json_rows(text: IO[str], position: list[int]) -> Iterator[tuple[int, Row | RowError]]:
    count = 0
    for line_no, line in enumerate(text, start=1):
        position[0] = line_no
        if not line.strip():
            continue
        count += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield line_no, RowError(None, f"not valid JSON: {error.msg}")
            continue
        if not isinstance(record, dict):
            yield line_no, RowError(None, "expected a JSON object per line")
            continue
        try:
            row = {str(k): scalar_text(v, str(k)) for k, v in record.items()}
        except RowError as error:
            yield line_no, error
            continue
        nul = _nul_column(row)
        yield line_no, (row if nul is None else RowError(nul, "contains a NUL character"))
    if count == 0:
        raise FileError(None, "empty file: no records")

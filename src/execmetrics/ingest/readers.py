"""Reading input files: CSV or JSON Lines, optionally gzip-compressed, as rows of strings."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from execmetrics.ingest.problems import RowError

Row = dict[str, str | None]

KINDS = ("fx_rates", "customers", "marketing_spend", "subscription_events")
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
    raw: IO[bytes] = gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")


def _scalar(value: object, column: str) -> str | None:
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

    Raises FileError for problems that make the whole file unreadable.
    """
    is_json = path.name.removesuffix(".gz").endswith((".jsonl", ".ndjson"))
    line_no = 0
    try:
        with _open_text(path) as text:
            if is_json:
                yield from _json_rows(text)
                return
            reader = csv.DictReader(text, restkey="\x00extra")
            if reader.fieldnames is None:
                raise FileError(None, "empty file: expected a header row")
            _check_header(reader.fieldnames)
            for row in reader:
                line_no = reader.line_num
                if "\x00extra" in row:
                    yield line_no, RowError(None, "more fields than the header has columns")
                    continue
                yield line_no, {k: v for k, v in row.items() if k is not None}
            if reader.line_num <= 1:
                raise FileError(None, "empty file: a header but no rows")
    except UnicodeDecodeError:
        raise FileError(_first_non_utf8_line(path), "not UTF-8 text") from None
    except (OSError, EOFError, csv.Error) as error:
        raise FileError(line_no or None, f"cannot read: {error}") from None


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


def _json_rows(text: IO[str]) -> Iterator[tuple[int, Row | RowError]]:
    count = 0
    for line_no, line in enumerate(text, start=1):
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
            yield line_no, {str(k): _scalar(v, str(k)) for k, v in record.items()}
        except RowError as error:
            yield line_no, error
    if count == 0:
        raise FileError(None, "empty file: no records")

"""Fast bulk inserts and reads of many rows inside the caller's transaction.

PostgreSQL gets COPY; SQLite gets the driver's executemany. Both bypass per-row statement
processing, which dominates the cost of loading a million events.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, TableClause

T = TypeVar("T")


def chunked(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` values: for key lists in `IN (...)` clauses."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def bulk_insert(
    connection: Connection,
    table: TableClause,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    if not rows:
        return
    names = ", ".join(columns)
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        statement = f"COPY {table.name} ({names}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" for _ in columns)
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({placeholders})", rows)
    finally:
        cursor.close()


def fetch_tuples(connection: Connection, query: Select[Any]) -> list[tuple[Any, ...]]:
    """Every row of a query as plain tuples, straight from the driver.

    For queries returning hundreds of thousands of numeric rows into numpy, building a result
    row object per row costs a third of the query. Parameters are rendered as literals, so
    use it only for queries whose bound values are numbers and identifiers chosen by code.
    """
    sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()

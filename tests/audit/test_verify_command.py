"""`execmetrics audit verify`: exit 0 on an intact trail, 1 naming the first broken record."""

from __future__ import annotations

from sqlalchemy import Engine, update
from tests.audit.support import (
    append_records,
    replace_records,
    stored_records,
    tampering,
    url_of,
)
from typer.testing import CliRunner, Result

from execmetrics.audit.chain import GENESIS
from execmetrics.cli import app
from execmetrics.store.tables import audit_log


def run_verify(engine: Engine) -> Result:
    return CliRunner().invoke(app, ["audit", "verify", "--db", url_of(engine)])


def one_line(result: Result) -> str:
    """The output with line wrapping undone."""
    return " ".join(result.output.split())


def test_an_intact_trail_exits_0_and_prints_the_head_hash(engine: Engine) -> None:
    append_records(engine, 5)
    head = stored_records(engine)[-1]["hash"]

    result = run_verify(engine)

    assert result.exit_code == 0, result.output
    assert f"audit trail intact: 5 records, head {head}" in one_line(result)


def test_an_empty_trail_exits_0(engine: Engine) -> None:
    result = run_verify(engine)

    assert result.exit_code == 0, result.output
    assert f"audit trail intact: 0 records, head {GENESIS}" in one_line(result)


def test_an_edited_record_exits_1_naming_it(engine: Engine) -> None:
    append_records(engine, 5)
    with tampering(engine) as connection:
        connection.execute(
            update(audit_log).where(audit_log.c.seq == 3).values(identity="token:intruder")
        )

    result = run_verify(engine)

    assert result.exit_code == 1, result.output
    output = one_line(result)
    assert "audit trail broken at record 3: its content was changed after writing" in output
    assert "(2 records before it are intact)" in output
    assert "broken at record 3" in " ".join(result.stderr.split())
    assert "intact:" not in output


def test_a_deleted_record_exits_1_naming_the_gap(engine: Engine) -> None:
    append_records(engine, 5)
    with tampering(engine) as connection:
        connection.execute(audit_log.delete().where(audit_log.c.seq == 3))

    result = run_verify(engine)

    assert result.exit_code == 1, result.output
    output = one_line(result)
    assert "audit trail broken at record 4: records 3 to 3 are missing" in output
    assert "(2 records before it are intact)" in output


def test_reordered_records_exit_1_naming_the_first(engine: Engine) -> None:
    append_records(engine, 5)
    records = stored_records(engine)
    with tampering(engine) as connection:
        replace_records(connection, [{**records[2], "seq": 2}, {**records[1], "seq": 3}])

    result = run_verify(engine)

    assert result.exit_code == 1, result.output
    output = one_line(result)
    assert "audit trail broken at record 2: does not follow the record before it" in output


def test_records_appended_later_extend_the_intact_trail(engine: Engine) -> None:
    append_records(engine, 2)
    assert run_verify(engine).exit_code == 0

    append_records(engine, 3)
    result = run_verify(engine)

    assert result.exit_code == 0, result.output
    assert "audit trail intact: 5 records" in one_line(result)

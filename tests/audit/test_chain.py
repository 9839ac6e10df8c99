"""The hash-chained audit trail: appending, verifying, tampering, append-only, concurrency."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from tests.audit.support import (
    append_records,
    bypass_append_only,
    drop_unique_prev_hash,
    entry,
    replace_records,
    stored,
    stored_records,
    tampering,
)
from tests.database import truncate_all

from execmetrics.audit import chain
from execmetrics.audit.chain import (
    APPEND_ATTEMPTS,
    GENESIS,
    AuditEntry,
    Verification,
    append,
    append_now,
    canonical,
    record_hash,
    verify,
)
from execmetrics.errors import Unavailable
from execmetrics.store.tables import audit_log


def verify_engine(engine: Engine) -> Verification:
    with engine.connect() as connection:
        return verify(connection)


def assert_linked(records: list[dict[str, Any]]) -> None:
    """Seqs 1..N, each record pointing at the one before it and hashing to its own hash."""
    assert [record["seq"] for record in records] == list(range(1, len(records) + 1))
    previous = GENESIS
    for record in records:
        assert record["prev_hash"] == previous
        assert record["hash"] == record_hash(record)
        previous = record["hash"]


# Appending and verifying an intact chain


def test_an_empty_trail_is_intact_with_the_genesis_head(engine: Engine) -> None:
    assert verify_engine(engine) == Verification(records=0, head_hash=GENESIS)
    assert verify_engine(engine).intact


def test_append_in_one_transaction_links_every_record_to_the_one_before(engine: Engine) -> None:
    seqs = append_records(engine, 5)

    records = stored_records(engine)
    assert seqs == [1, 2, 3, 4, 5]
    assert records[0]["prev_hash"] == GENESIS
    assert_linked(records)
    result = verify_engine(engine)
    assert result.intact
    assert result == Verification(records=5, head_hash=records[-1]["hash"])


def test_append_now_links_records_written_in_separate_transactions(engine: Engine) -> None:
    seqs = [append_now(engine, entry(number)) for number in range(1, 8)]

    records = stored_records(engine)
    assert seqs == list(range(1, 8))
    assert records[0]["prev_hash"] == GENESIS
    assert_linked(records)
    assert verify_engine(engine) == Verification(records=7, head_hash=records[-1]["hash"])


def test_a_record_stores_the_entry_it_was_given(engine: Engine) -> None:
    given = entry(1, client="203.0.113.9", user_agent="curl/8.5", outcome="403")
    append_now(engine, given)

    (record,) = stored_records(engine)
    assert record["request_id"] == "req-0001"
    assert record["identity"] == "token:t"
    assert record["role"] == "admin"
    assert record["action"] == "GET /api/v1/metrics"
    assert record["resource"] == "/api/v1/metrics"
    assert record["parameters"] == {"from": "2024-01"}
    assert record["client"] == "203.0.113.9"
    assert record["user_agent"] == "curl/8.5"
    assert record["outcome"] == "403"
    assert record["at"] > 0


def test_the_outcome_defaults_to_ok() -> None:
    assert entry().outcome == "ok"


def test_a_rolled_back_append_leaves_no_record_and_no_gap(engine: Engine) -> None:
    with engine.connect() as connection:
        transaction = connection.begin()
        assert append(connection, entry(1)) == 1
        transaction.rollback()

    assert stored_records(engine) == []
    assert append_now(engine, entry(2)) == 1
    (record,) = stored_records(engine)
    assert record["request_id"] == "req-0002"
    assert record["prev_hash"] == GENESIS


def test_non_ascii_and_nested_values_survive_the_database(engine: Engine) -> None:
    parameters = {
        "q": "Zoë, 東京 🚀",
        "nested": {"z": [1, 2.5, None, True], "a": "ñ"},
        "big": 2**70,
    }
    append_now(engine, entry(1, identity="user:zoë@example.com", parameters=parameters))
    append_now(engine, entry(2))

    records = stored_records(engine)
    assert records[0]["parameters"] == parameters
    assert records[0]["identity"] == "user:zoë@example.com"
    assert verify_engine(engine) == Verification(records=2, head_hash=records[-1]["hash"])


def test_a_long_user_agent_is_cut_to_400_characters_before_hashing(engine: Engine) -> None:
    append_now(engine, entry(1, user_agent="x" * 1000))
    append_now(engine, entry(2, user_agent=""))

    first, second = stored_records(engine)
    assert first["user_agent"] == "x" * 400
    assert second["user_agent"] is None
    assert verify_engine(engine).intact


def test_verify_reads_the_chain_in_batches(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain, "VERIFY_BATCH", 2)
    append_records(engine, 7)
    records = stored_records(engine)

    assert verify_engine(engine) == Verification(records=7, head_hash=records[-1]["hash"])

    with tampering(engine) as connection:
        connection.execute(update(audit_log).where(audit_log.c.seq == 6).values(outcome="500"))
    result = verify_engine(engine)
    assert result.broken_seq == 6
    assert result.records == 5


# Tampering: each of the four kinds breaks the chain at the right record


@pytest.mark.parametrize(
    ("column", "forged"),
    [
        ("outcome", "200"),
        ("identity", "token:someone-else"),
        ("role", None),
        ("parameters", {"from": "2023-01"}),
        ("at", 1),
        ("hash", "f" * 64),
    ],
)
def test_an_edited_record_breaks_the_chain_at_that_record(
    engine: Engine, column: str, forged: object
) -> None:
    append_records(engine, 5)
    records = stored_records(engine)

    with tampering(engine) as connection:
        connection.execute(update(audit_log).where(audit_log.c.seq == 3).values({column: forged}))

    result = verify_engine(engine)
    assert not result.intact
    assert result.broken_seq == 3
    assert result.records == 2
    assert result.head_hash == records[1]["hash"]
    assert result.reason == "its content was changed after writing"


def test_an_edited_record_with_a_recomputed_hash_breaks_the_chain_at_the_next(
    engine: Engine,
) -> None:
    append_records(engine, 5)
    third = stored_records(engine)[2]
    edited = {**third, "outcome": "200"}
    edited["hash"] = record_hash(edited)

    with tampering(engine) as connection:
        replace_records(connection, [edited])

    result = verify_engine(engine)
    assert result.broken_seq == 4
    assert result.records == 3
    assert result.head_hash == edited["hash"]
    assert result.reason is not None
    assert "does not follow" in result.reason


def test_a_deleted_record_breaks_the_chain_at_the_record_after_it(engine: Engine) -> None:
    append_records(engine, 5)
    records = stored_records(engine)

    with tampering(engine) as connection:
        connection.execute(audit_log.delete().where(audit_log.c.seq == 3))

    result = verify_engine(engine)
    assert not result.intact
    assert result.broken_seq == 4
    assert result.records == 2
    assert result.head_hash == records[1]["hash"]
    assert result.reason == "records 3 to 3 are missing"


def test_a_deleted_first_record_breaks_the_chain_at_the_second(engine: Engine) -> None:
    append_records(engine, 3)

    with tampering(engine) as connection:
        connection.execute(audit_log.delete().where(audit_log.c.seq == 1))

    result = verify_engine(engine)
    assert result.broken_seq == 2
    assert result.records == 0
    assert result.head_hash == GENESIS
    assert result.reason == "records 1 to 1 are missing"


def test_a_deleted_record_with_the_rest_renumbered_breaks_the_chain(engine: Engine) -> None:
    append_records(engine, 5)
    records = stored_records(engine)

    with tampering(engine) as connection:
        connection.execute(audit_log.delete().where(audit_log.c.seq >= 3))
        replace_records(
            connection, [{**record, "seq": record["seq"] - 1} for record in records[3:]]
        )

    result = verify_engine(engine)
    assert result.broken_seq == 3
    assert result.records == 2
    assert result.reason is not None
    assert "does not follow" in result.reason


def forged_insertion(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records 3.. moved up one seq, and a forged record 3 that follows record 2."""
    forged = {
        **records[2],
        "request_id": "forged",
        "identity": "token:intruder",
        "prev_hash": records[1]["hash"],
    }
    forged["hash"] = record_hash(forged)
    return [forged, *({**record, "seq": record["seq"] + 1} for record in records[2:])]


def test_an_inserted_record_is_refused_by_the_unique_prev_hash(engine: Engine) -> None:
    append_records(engine, 5)
    records = stored_records(engine)

    # Even with the triggers bypassed, two records cannot claim the same predecessor.
    with pytest.raises(IntegrityError), tampering(engine) as connection:
        connection.execute(audit_log.delete().where(audit_log.c.seq >= 3))
        replace_records(connection, forged_insertion(records))

    assert stored_records(engine) == records
    assert verify_engine(engine).intact


def test_an_inserted_record_breaks_the_chain_at_the_record_after_it(engine: Engine) -> None:
    append_records(engine, 5)
    records = stored_records(engine)
    rewritten = forged_insertion(records)

    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            bypass_append_only(connection)
            drop_unique_prev_hash(connection)
            connection.execute(audit_log.delete().where(audit_log.c.seq >= 3))
            replace_records(connection, rewritten)
            assert [record["seq"] for record in stored(connection)] == [1, 2, 3, 4, 5, 6]
            result = verify(connection)
        finally:
            # On PostgreSQL this also restores the constraint for the tests that follow.
            transaction.rollback()

    assert not result.intact
    assert result.broken_seq == 4
    assert result.records == 3
    assert result.head_hash == rewritten[0]["hash"]
    assert result.reason is not None
    assert "does not follow" in result.reason


def swap_contents(connection: Connection, records: list[dict[str, Any]], a: int, b: int) -> None:
    """Exchange every column but seq between records a and b."""
    first, second = records[a - 1], records[b - 1]
    replace_records(connection, [{**second, "seq": a}, {**first, "seq": b}])


def test_reordered_records_break_the_chain_at_the_first_of_them(engine: Engine) -> None:
    append_records(engine, 5)
    records = stored_records(engine)

    with tampering(engine) as connection:
        swap_contents(connection, records, 2, 3)

    tampered = stored_records(engine)
    assert tampered[1]["request_id"] == records[2]["request_id"]
    assert tampered[2]["request_id"] == records[1]["request_id"]
    result = verify_engine(engine)
    assert not result.intact
    assert result.broken_seq == 2
    assert result.records == 1
    assert result.head_hash == records[0]["hash"]
    assert result.reason is not None
    assert "does not follow" in result.reason


def test_deleting_the_newest_records_shows_only_in_the_head_hash(engine: Engine) -> None:
    """What the module documents: the operator must keep the head hash to notice this."""
    append_records(engine, 5)
    records = stored_records(engine)

    with tampering(engine) as connection:
        connection.execute(audit_log.delete().where(audit_log.c.seq == 5))

    result = verify_engine(engine)
    assert result == Verification(records=4, head_hash=records[3]["hash"])
    assert result.head_hash != records[4]["hash"]


def test_rewriting_every_later_hash_shows_only_in_the_head_hash(engine: Engine) -> None:
    append_records(engine, 5)
    records = stored_records(engine)
    rewritten, previous = [], records[1]["hash"]
    for record in records[2:]:
        changed = {**record, "prev_hash": previous}
        if record["seq"] == 3:
            changed["outcome"] = "200"
        changed["hash"] = previous = record_hash(changed)
        rewritten.append(changed)

    with tampering(engine) as connection:
        replace_records(connection, rewritten)

    result = verify_engine(engine)
    assert result.intact
    assert result.records == 5
    assert result.head_hash == rewritten[-1]["hash"] != records[-1]["hash"]


# Append-only: without bypassing the triggers, records cannot be changed


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET outcome = '200' WHERE seq = 2",
        "UPDATE audit_log SET seq = seq + 100",
        "DELETE FROM audit_log WHERE seq = 2",
        "DELETE FROM audit_log",
    ],
)
def test_records_cannot_be_updated_or_deleted(engine: Engine, statement: str) -> None:
    append_records(engine, 3)
    records = stored_records(engine)

    with pytest.raises(DBAPIError, match="audit_log is append-only"), engine.begin() as connection:
        connection.execute(text(statement))

    assert stored_records(engine) == records
    assert verify_engine(engine).intact


def test_the_log_cannot_be_truncated_on_postgresql(postgres_engine: Engine) -> None:
    # SQLite has no TRUNCATE statement; its DELETE is refused by the test above.
    engine = postgres_engine
    truncate_all(engine)
    append_records(engine, 3)
    records = stored_records(engine)

    with pytest.raises(DBAPIError, match="TRUNCATE refused"), engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_log"))

    assert stored_records(engine) == records


# Concurrency and failures of append_now


def test_concurrent_writers_do_not_fork_the_chain(engine: Engine) -> None:
    writers, appends_each = 8, 15
    start = threading.Barrier(writers)

    def write(writer: int) -> list[int]:
        start.wait(timeout=30)
        return [append_now(engine, entry(writer * 100 + number)) for number in range(appends_each)]

    with ThreadPoolExecutor(max_workers=writers) as pool:
        futures = [pool.submit(write, writer) for writer in range(writers)]
        seqs_by_writer = [future.result(timeout=300) for future in futures]

    total = writers * appends_each
    for seqs in seqs_by_writer:
        assert seqs == sorted(seqs)
    assert sorted(seq for seqs in seqs_by_writer for seq in seqs) == list(range(1, total + 1))
    records = stored_records(engine)
    assert len({record["request_id"] for record in records}) == total
    assert_linked(records)
    assert verify_engine(engine) == Verification(records=total, head_hash=records[-1]["hash"])


def test_append_now_retries_after_losing_a_race(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    append_now(engine, entry(1))
    calls = 0
    append_many = chain.append_many

    def lose_once(connection: Connection, given: Sequence[AuditEntry]) -> list[int]:
        nonlocal calls
        calls += 1
        seqs = append_many(connection, given)
        if calls == 1:
            raise IntegrityError("INSERT INTO audit_log", {}, Exception("duplicate seq"))
        return seqs

    monkeypatch.setattr(chain, "append_many", lose_once)
    monkeypatch.setattr(chain, "time", SimpleNamespace(sleep=lambda _seconds: None))

    assert append_now(engine, entry(2)) == 2
    assert calls == 2
    records = stored_records(engine)
    assert [record["request_id"] for record in records] == ["req-0001", "req-0002"]
    assert verify_engine(engine).intact


def test_append_now_gives_up_with_unavailable(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    append_many = chain.append_many

    def always_locked(connection: Connection, given: Sequence[AuditEntry]) -> list[int]:
        append_many(connection, given)
        raise OperationalError("INSERT INTO audit_log", {}, Exception("database is locked"))

    monkeypatch.setattr(chain, "append_many", always_locked)
    monkeypatch.setattr(chain, "time", SimpleNamespace(sleep=sleeps.append))

    with pytest.raises(Unavailable):
        append_now(engine, entry(1))

    assert len(sleeps) == APPEND_ATTEMPTS
    assert sleeps == sorted(sleeps)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(audit_log)).scalar() == 0


# The canonical form and the record hash


def test_canonical_sorts_keys_at_every_level() -> None:
    record = {"b": 1, "a": {"d": [2, {"f": 3, "e": 4}], "c": None}}

    assert canonical(record) == b'{"a":{"c":null,"d":[2,{"e":4,"f":3}]},"b":1}'
    assert canonical(dict(reversed(record.items()))) == canonical(record)


def test_canonical_keeps_non_ascii_text_as_utf8() -> None:
    record = {"identity": "user:zoë@example.com", "q": "東京 🚀"}

    assert canonical(record) == '{"identity":"user:zoë@example.com","q":"東京 🚀"}'.encode()
    assert canonical(record) == canonical({"q": "東京 🚀", "identity": "user:zoë@example.com"})


def sample_record() -> dict[str, Any]:
    return {
        "seq": 1,
        "at": 1_700_000_000_000_000,
        "request_id": "req-0001",
        "identity": "token:t",
        "role": "admin",
        "action": "GET /api/v1/metrics",
        "resource": "/api/v1/metrics",
        "parameters": {"from": "2024-01"},
        "client": None,
        "user_agent": None,
        "outcome": "ok",
        "prev_hash": GENESIS,
    }


def test_record_hash_is_the_sha256_of_the_canonical_form() -> None:
    # Pinned: records already written must stay verifiable, so the form must not drift.
    expected = (
        b'{"action":"GET /api/v1/metrics","at":1700000000000000,"client":null,'
        b'"identity":"token:t","outcome":"ok","parameters":{"from":"2024-01"},'
        b'"prev_hash":"' + GENESIS.encode() + b'","request_id":"req-0001",'
        b'"resource":"/api/v1/metrics","role":"admin","seq":1,"user_agent":null}'
    )
    assert record_hash(sample_record()) == hashlib.sha256(expected).hexdigest()


def test_record_hash_ignores_the_hash_field() -> None:
    record = sample_record()

    assert record_hash({**record, "hash": "a" * 64}) == record_hash(record)
    assert record_hash({**record, "hash": record_hash(record)}) == record_hash(record)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", 2),
        ("at", 1_700_000_000_000_001),
        ("identity", "token:u"),
        ("role", None),
        ("parameters", {"from": "2024-02"}),
        ("outcome", "500"),
        ("prev_hash", "1" * 64),
    ],
)
def test_record_hash_covers_every_other_field(field: str, value: object) -> None:
    record = sample_record()

    assert record_hash({**record, field: value}) != record_hash(record)

"""Group commit: records submitted together are appended in one transaction, each request
learns its record's seq, and a failed write fails every request waiting on it."""

from __future__ import annotations

from concurrent.futures import wait

import pytest
from sqlalchemy import Engine, event
from tests.audit.support import entry, stored_records

from execmetrics.audit import writer as writer_module
from execmetrics.audit.chain import verify
from execmetrics.audit.writer import AuditWriter
from execmetrics.errors import Unavailable


def test_records_submitted_together_share_transactions(engine: Engine) -> None:
    commits: list[object] = []

    def committed(connection: object) -> None:
        commits.append(connection)

    event.listen(engine, "commit", committed)
    audit = AuditWriter(engine)
    futures = [audit.submit(entry(number)) for number in range(1, 201)]
    wait(futures, timeout=30)
    event.remove(engine, "commit", committed)
    seqs = sorted(future.result() for future in futures)
    assert seqs == list(range(1, 201))
    assert len(commits) < 200
    records = stored_records(engine)
    assert [r["request_id"] for r in records] == [f"req-{n:04d}" for n in range(1, 201)]
    with engine.connect() as connection:
        assert verify(connection).intact


def test_a_failed_write_fails_every_waiting_request(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object) -> list[int]:
        raise Unavailable("the audit record could not be written")

    monkeypatch.setattr(writer_module, "append_batch_now", refuse)
    audit = AuditWriter(engine)
    futures = [audit.submit(entry(number)) for number in range(1, 4)]
    wait(futures, timeout=30)
    for future in futures:
        with pytest.raises(Unavailable):
            future.result()
    assert stored_records(engine) == []

"""Group commit of audit records: one writer thread per server process.

Every audited request waits until its record is committed, but the records of requests that
finish together are appended in one transaction. The chain serialises appends (one lock,
one head), so a transaction per request would make every request queue behind the
commits of all the others.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future

from sqlalchemy import Engine

from execmetrics.audit.chain import AuditEntry, append_batch_now
from execmetrics.errors import ServiceError, Unavailable

log = logging.getLogger("execmetrics.audit")

MAX_BATCH = 500
IDLE_SECONDS = 5.0  # the thread ends after this long without records, and restarts on demand


class AuditWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.Queue[tuple[AuditEntry, Future[int]]] = queue.Queue()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, entry: AuditEntry) -> Future[int]:
        """The record's seq once committed, or Unavailable when it could not be written."""
        written: Future[int] = Future()
        with self._mutex:
            self._queue.put((entry, written))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()
        return written

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._mutex:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[tuple[AuditEntry, Future[int]]]) -> None:
        try:
            seqs = append_batch_now(self.engine, [entry for entry, _ in batch])
        except ServiceError as error:
            failure: Exception = error
        except Exception as error:  # any failure must reach the waiting requests
            log.exception("audit records not written")
            failure = Unavailable(f"the audit record could not be written: {type(error).__name__}")
        else:
            for (_, written), seq in zip(batch, seqs, strict=True):
                written.set_result(seq)
            return
        for _, written in batch:
            written.set_exception(failure)

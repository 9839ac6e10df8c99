"""The outbox: queued once per idempotency key, delivered by the dispatcher with retries,
back-off and a dead letter, in-app notifications in the user's list, and nothing lost when
the dispatcher is killed mid-delivery."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import Engine, select
from tests.notify.servers import Reply, TlsFiles, http_recorder, make_tls_files, smtp_server

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_user
from execmetrics.notify.channels import Channel, parse_channel
from execmetrics.notify.message import Message, Severity
from execmetrics.notify.outbox import (
    BACKOFF_CAP_SECONDS,
    CLAIM_SECONDS,
    IN_APP,
    MAX_ATTEMPTS,
    backoff_us,
    dispatch_due,
    enqueue,
    requeue,
)
from execmetrics.notify.registry import ChannelEntry, Sealer, apply_channels, current_channels
from execmetrics.store.tables import inbox, notifications
from execmetrics.timeutil import now_micros

SECRET = "a-test-secret-key-of-sufficient-length-0123456789"
ALLOW = ("127.0.0.1/32",)


def message(key: str, severity: Severity = Severity.WARNING) -> Message:
    return Message(
        idempotency_key=key,
        event="firing",
        severity=severity,
        subject=f"MRR below floor ({key})",
        text="MRR is £1,950,000.00, below £2,000,000.00",
        html="<p>MRR is £1,950,000.00</p>",
        facts=(("KPI", "mrr"),),
        links=(("Acknowledge", "https://metrics.example/alerts/acknowledge/x"),),
    )


def queue(engine: Engine, keys: list[str], channel: str, recipient: str = "") -> None:
    with engine.begin() as connection:
        for key in keys:
            assert enqueue(connection, message(key), channel, recipient)


def rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as connection:
        found = connection.execute(select(notifications).order_by(notifications.c.id))
        return [dict(row._mapping) for row in found]


def webhook(url: str) -> Channel:
    return parse_channel({"kind": "webhook", "url": url, "secret": "s" * 32})


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path)


def test_a_notification_is_queued_once_per_idempotency_key(engine: Engine) -> None:
    with engine.begin() as connection:
        assert enqueue(connection, message("alert:1:1:firing"), "team")
        assert not enqueue(connection, message("alert:1:1:firing"), "team")
        assert enqueue(connection, message("alert:1:2:firing"), "team")
    assert [row["idempotency_key"] for row in rows(engine)] == [
        "alert:1:1:firing",
        "alert:1:2:firing",
    ]


def test_email_reaches_the_smtp_server_and_in_app_the_users_list(
    engine: Engine, tls: TlsFiles
) -> None:
    with smtp_server(tls) as server, engine.begin() as connection:
        email = parse_channel(
            {
                "kind": "email", "host": "127.0.0.1", "port": server.port,
                "username": server.username, "password": server.password,
                "sender": "alerts@metrics.example", "to": ["finance@example.com"],
                "ca_file": str(tls.ca_file),
            }
        )  # fmt: skip
        user = create_user(connection, "cfo@example.com", "a long enough password", Role.EXECUTIVE)
        enqueue(connection, message("k-email"), "finance-email")
        enqueue(connection, message("k-app"), IN_APP, "CFO@example.com")
    with smtp_server(tls) as server:
        email = email.model_copy(update={"port": server.port})
        report = dispatch_due(engine, {"finance-email": email}.get, ALLOW)
        assert (report.delivered, report.retrying, report.dead) == (2, 0, 0)
        assert [mail.rcpt_tos for mail in server.received] == [("finance@example.com",)]
    with engine.connect() as connection:
        listed = connection.execute(select(inbox)).one()
    assert listed.user_id == user and listed.subject == "MRR below floor (k-app)"
    assert {row["status"] for row in rows(engine)} == {"delivered"}
    # Delivered notifications are not sent again.
    assert dispatch_due(engine, {"finance-email": email}.get, ALLOW).delivered == 0


def test_a_failed_delivery_is_retried_after_a_back_off_then_delivered(engine: Engine) -> None:
    with http_recorder(Reply(503, b"busy"), Reply(200)) as receiver:
        hooks = {"hook": webhook(receiver.url)}
        queue(engine, ["k1"], "hook")
        first = dispatch_due(engine, hooks.get, ALLOW)
        assert (first.delivered, first.retrying) == (0, 1)
        [row] = rows(engine)
        assert row["status"] == "queued" and row["attempts"] == 1
        wait = int(row["next_attempt_at"]) - now_micros()  # type: ignore[call-overload]
        assert 14_000_000 <= wait <= 30_000_000  # between half and all of the first 30 s
        assert "503" in str(row["last_error"])
        # Not yet due: nothing is sent.
        assert dispatch_due(engine, hooks.get, ALLOW).delivered == 0
        with time_machine.travel(datetime.now(UTC) + timedelta(seconds=31), tick=True):
            assert dispatch_due(engine, hooks.get, ALLOW).delivered == 1
        keys = {request.headers["idempotency-key"] for request in receiver.requests}
        assert keys == {"k1"} and len(receiver.requests) == 2


def test_after_the_last_attempt_a_notification_is_dead_and_can_be_requeued(
    engine: Engine,
) -> None:
    with http_recorder(Reply(500, b"broken")) as receiver:
        hooks = {"hook": webhook(receiver.url)}
        queue(engine, ["k1"], "hook")
        moment = datetime.now(UTC)
        for attempt in range(MAX_ATTEMPTS):
            with time_machine.travel(moment, tick=False):
                report = dispatch_due(engine, hooks.get, ALLOW)
            assert report.delivered == 0
            moment += timedelta(seconds=BACKOFF_CAP_SECONDS + 1)
            if attempt < MAX_ATTEMPTS - 1:
                assert report.retrying == 1
        assert report.dead == 1
        [row] = rows(engine)
        assert row["status"] == "dead" and row["attempts"] == MAX_ATTEMPTS
        assert len(receiver.requests) == MAX_ATTEMPTS
        with engine.begin() as connection:
            assert requeue(connection, int(row["id"]))  # type: ignore[call-overload]
        receiver.reply_with(Reply(200))
        assert dispatch_due(engine, hooks.get, ALLOW).delivered == 1


def test_a_failure_that_cannot_succeed_later_is_dead_at_once(engine: Engine) -> None:
    queue(engine, ["to-metadata"], "metadata")
    queue(engine, ["to-nobody"], "ghost")
    queue(engine, ["to-stranger"], IN_APP, "stranger@example.com")
    channels = {"metadata": webhook("http://169.254.169.254/latest")}
    report = dispatch_due(engine, channels.get, ALLOW)
    assert (report.delivered, report.retrying, report.dead) == (0, 0, 3)
    errors = {row["idempotency_key"]: row["last_error"] for row in rows(engine)}
    assert "link-local" in str(errors["to-metadata"])
    assert "does not exist" in str(errors["to-nobody"])
    assert "no user" in str(errors["to-stranger"])


def test_back_off_doubles_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempts, ceiling in [(1, 30), (2, 60), (5, 480), (8, 3600), (20, 3600)]:
        draws = [backoff_us(attempts, rng) / 1_000_000 for _ in range(200)]
        assert ceiling / 2 <= min(draws) and max(draws) <= ceiling
        assert max(draws) - min(draws) > ceiling / 10  # drawn, not fixed


def test_channel_secrets_are_sealed_at_rest_and_kept_when_left_out(engine: Engine) -> None:
    sealer = Sealer.from_secret(SECRET)
    entry = ChannelEntry(name="hook", channel=webhook("https://hooks.example/x"))
    with engine.begin() as connection:
        created = apply_channels(connection, [entry], sealer, "test")
        stored = connection.execute(select(notifications.c.id)).all()  # nothing queued
        assert created.created == ["hook"] and stored == []
        edit = ChannelEntry.from_flat(
            {"name": "hook", "kind": "webhook", "url": "https://hooks.example/x"}
        )
        unchanged = apply_channels(connection, [edit], sealer, "test")
        assert unchanged.unchanged == ["hook"]  # the secret left out is kept, not changed
        channel = current_channels(connection, sealer)["hook"].channel
        assert channel.secret is not None  # type: ignore[union-attr]
        assert channel.secret.get_secret_value() == "s" * 32  # type: ignore[union-attr]
        from execmetrics.store.tables import channel_versions

        raw = str(connection.execute(select(channel_versions.c.definition)).scalar())
    assert "s" * 32 not in raw and "sealed" in raw


def test_killing_the_dispatcher_mid_delivery_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'execmetrics.db'}"
    from execmetrics.store.database import open_database

    engine = open_database(url)
    keys = [f"alert:{n}:1:firing" for n in range(20)]
    # The receiver hangs on its first request: the worker is killed while delivering.
    with http_recorder(Reply(200, delay=60), Reply(200)) as receiver:
        sealer = Sealer.from_secret(SECRET)
        with engine.begin() as connection:
            entry = ChannelEntry(name="hook", channel=webhook(receiver.url))
            apply_channels(connection, [entry], sealer, "test")
        queue(engine, keys, "hook")
        worker = _start_worker(url)
        try:
            _wait_for(lambda: len(receiver.requests) >= 1)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        in_flight = [row for row in rows(engine) if row["status"] == "queued"]
        assert in_flight and all(row["claimed_until"] for row in in_flight)  # claimed, unsent
        with engine.connect() as connection:
            hooks = {"hook": current_channels(connection, sealer)["hook"].channel}
        # A dispatcher started after the dead one's claims ran out delivers everything.
        later = datetime.now(UTC) + timedelta(seconds=CLAIM_SECONDS + 1)
        with time_machine.travel(later, tick=True):
            report = dispatch_due(engine, hooks.get, ALLOW)
        assert report.dead == 0 and report.retrying == 0
        assert {row["status"] for row in rows(engine)} == {"delivered"}
        received = {request.headers["idempotency-key"] for request in receiver.requests}
        assert received == set(keys)  # every one, at least once, each with its key
    engine.dispose()


def _start_worker(url: str) -> subprocess.Popen[bytes]:
    environment = os.environ | {
        "EXECMETRICS_DATABASE_URL": url,
        "EXECMETRICS_SECRET_KEY": SECRET,
        "EXECMETRICS_OUTBOUND_ALLOW": "127.0.0.1",
        "EXECMETRICS_SCHEDULER_TICK_SECONDS": "1",
    }
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "execmetrics"), "worker"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the worker never started delivering")
        time.sleep(0.05)

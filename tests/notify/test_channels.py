"""Channel configurations, and delivery through each kind of channel to real local servers:
SMTP with STARTTLS and AUTH, and HTTP servers standing in for Slack, Twilio and webhooks."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from pydantic import SecretStr, ValidationError
from tests.notify.servers import (
    SMTP_PASSWORD,
    SMTP_USERNAME,
    HttpRecorder,
    Reply,
    SmtpServer,
    TlsFiles,
    http_recorder,
    make_tls_files,
    refused_port,
    smtp_server,
)

from execmetrics.notify.channels import (
    Channel,
    DeliveryFailed,
    EmailChannel,
    SlackChannel,
    SmsChannel,
    WebhookChannel,
    deliver,
    deliver_many,
    merge_secrets,
    missing_secrets,
    parse_channel,
    public_view,
)
from execmetrics.notify.email import message_id
from execmetrics.notify.message import InlineImage, Message, Severity
from execmetrics.notify.webhook import send_webhook, verify_webhook_signature

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
SLACK_TOKEN = "slack-secret-token-abc123"
TWILIO_TOKEN = "twilio-auth-token-0123456789"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
WEBHOOK_SECRET = "whsec-0123456789abcdef"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
LOCAL = ["127.0.0.1"]

MESSAGE = Message(
    idempotency_key="rule-7:firing:2026-01-01",
    event="firing",
    severity=Severity.CRITICAL,
    subject="MRR fell 12% <below> threshold & still falling",
    text="MRR is $98,000, below the $100,000 threshold set for <Finance>.",
    html='<p>MRR is $98,000.</p><img src="cid:mrr-chart" alt="MRR, last 90 days">',
    facts=(("MRR", "$98,000"), ("Threshold", "< $100,000")),
    links=(
        ("Acknowledge", "https://metrics.example.com/ack/7"),
        ("Open dashboard", "https://metrics.example.com/d/mrr"),
    ),
    images=(InlineImage("mrr-chart", PNG, "MRR, last 90 days"),),
)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp(tls: TlsFiles) -> Iterator[SmtpServer]:
    with smtp_server(tls) as server:
        yield server


@pytest.fixture
def recorder() -> Iterator[HttpRecorder]:
    with http_recorder() as server:
        yield server


def email_channel(server: SmtpServer, tls: TlsFiles, **changes: object) -> EmailChannel:
    config: dict[str, object] = {
        "kind": "email",
        "host": server.host,
        "port": server.port,
        "username": SMTP_USERNAME,
        "password": SMTP_PASSWORD,
        "sender": "alerts@execmetrics.test",
        "to": ["cfo@example.com"],
        "timeout_seconds": 5,
        "ca_file": str(tls.ca_file),
    }
    channel = parse_channel(config | changes)
    assert isinstance(channel, EmailChannel)
    return channel


def slack_channel(server: HttpRecorder) -> SlackChannel:
    return SlackChannel(webhook_url=SecretStr(f"{server.url}/services/T01/B02/{SLACK_TOKEN}"))


def sms_channel(server: HttpRecorder) -> SmsChannel:
    return SmsChannel(
        account_sid=TWILIO_SID,
        auth_token=SecretStr(TWILIO_TOKEN),
        from_number="+15005550006",
        to=["+14155550100", "+14155550101"],
        base_url=server.url,
    )


def webhook_channel(url: str) -> WebhookChannel:
    return WebhookChannel(url=url, secret=SecretStr(WEBHOOK_SECRET))


def failure_of(channel: Channel, **options: list[str]) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as failed:
        deliver(channel, MESSAGE, **options)
    return failed.value


# --- Email ---------------------------------------------------------------------------------


def test_email_arrives_with_text_html_and_an_inline_image(smtp: SmtpServer, tls: TlsFiles) -> None:
    deliver(email_channel(smtp, tls), MESSAGE, allow=LOCAL)

    [mail] = smtp.received
    assert mail.mail_from == "alerts@execmetrics.test"
    assert mail.rcpt_tos == ("cfo@example.com",)
    parsed = mail.parsed()
    assert parsed["Subject"] == MESSAGE.subject
    assert parsed["From"] == "alerts@execmetrics.test"
    assert parsed["To"] == "cfo@example.com"
    assert parsed["Date"].datetime.tzinfo is not None
    assert parsed["X-Execmetrics-Idempotency-Key"] == MESSAGE.idempotency_key
    assert parsed.get_content_type() == "multipart/alternative"
    plain, related = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().strip() == MESSAGE.text
    assert related.get_content_type() == "multipart/related"
    html, image = related.iter_parts()
    assert html.get_content_type() == "text/html"
    assert 'src="cid:mrr-chart"' in html.get_content()
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == "<mrr-chart>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == PNG


def test_the_message_id_is_the_same_for_a_resent_message(smtp: SmtpServer, tls: TlsFiles) -> None:
    channel = email_channel(smtp, tls)
    deliver(channel, MESSAGE, allow=LOCAL)
    deliver(channel, MESSAGE, allow=LOCAL)
    other = Message("rule-7:resolved:2026-01-02", "resolved", Severity.INFO, "MRR recovered", "")
    deliver(channel, other, allow=LOCAL)

    first, resent, resolved = (mail.parsed()["Message-ID"] for mail in smtp.received)
    assert first == resent == message_id(MESSAGE.idempotency_key, "alerts@execmetrics.test")
    assert first.endswith("@execmetrics.test>")
    assert resolved != first


def test_plain_text_email_carries_images_as_attachments(smtp: SmtpServer, tls: TlsFiles) -> None:
    plain_only = Message(
        "k-1", "digest", Severity.INFO, "Weekly digest", "Text only.", images=MESSAGE.images
    )
    deliver(email_channel(smtp, tls), plain_only, allow=LOCAL)

    parsed = smtp.received[0].parsed()
    assert parsed.get_body(("plain",)) is not None
    assert parsed.get_body(("html",)) is None
    [attachment] = parsed.iter_attachments()
    assert attachment.get_filename() == "mrr-chart.png"
    assert attachment.get_content() == PNG


def test_recipients_of_a_delivery_replace_the_channel_list(smtp: SmtpServer, tls: TlsFiles) -> None:
    channel = email_channel(smtp, tls, to=[])
    deliver(channel, MESSAGE, recipients=["ceo@example.com"], allow=LOCAL)

    [mail] = smtp.received
    assert mail.rcpt_tos == ("ceo@example.com",)
    assert mail.parsed()["To"] == "ceo@example.com"


def test_email_without_recipients_is_not_retryable(smtp: SmtpServer, tls: TlsFiles) -> None:
    failure = failure_of(email_channel(smtp, tls, to=[]), allow=LOCAL)
    assert not failure.retryable
    assert "no recipients" in failure.detail
    assert smtp.received == []


def test_an_invalid_recipient_is_refused_before_sending(smtp: SmtpServer, tls: TlsFiles) -> None:
    failure = failure_of(email_channel(smtp, tls), recipients=["not an address"], allow=LOCAL)
    assert not failure.retryable
    assert smtp.received == []


def test_a_wrong_password_is_not_retryable_and_not_shown(smtp: SmtpServer, tls: TlsFiles) -> None:
    wrong = "wrong-password-never-shown"
    failure = failure_of(email_channel(smtp, tls, password=wrong), allow=LOCAL)
    assert not failure.retryable
    assert "authentication failed: 535" in failure.detail
    assert wrong not in failure.detail
    assert SMTP_PASSWORD not in failure.detail
    assert smtp.received == []


def test_a_temporary_refusal_is_retryable(smtp: SmtpServer, tls: TlsFiles) -> None:
    smtp.reply_to_data("451 4.3.0 Mailbox busy, try again later")
    failure = failure_of(email_channel(smtp, tls), allow=LOCAL)
    assert failure.retryable
    assert "451" in failure.detail


def test_a_permanent_refusal_is_not_retryable(smtp: SmtpServer, tls: TlsFiles) -> None:
    smtp.reply_to_data("554 5.7.1 Message rejected as spam")
    failure = failure_of(email_channel(smtp, tls), allow=LOCAL)
    assert not failure.retryable
    assert "554 5.7.1 Message rejected as spam" in failure.detail


def test_refused_recipients_are_reported_with_their_replies(
    smtp: SmtpServer, tls: TlsFiles
) -> None:
    smtp.refuse_recipient("gone@example.com", "550 5.1.1 No such user")
    recipients = ["cfo@example.com", "gone@example.com"]
    failure = failure_of(email_channel(smtp, tls), recipients=recipients, allow=LOCAL)

    assert not failure.retryable
    assert "refused 1 of 2 recipients" in failure.detail
    assert "gone@example.com: 550 5.1.1 No such user" in failure.detail
    assert [mail.rcpt_tos for mail in smtp.received] == [("cfo@example.com",)]


def test_a_batch_of_emails_shares_one_session_and_reports_each_message(
    smtp: SmtpServer, tls: TlsFiles
) -> None:
    smtp.refuse_recipient("gone@example.com", "550 5.1.1 No such user")
    batch = [
        (replace(MESSAGE, idempotency_key=f"k{n}"), (address,))
        for n, address in enumerate(["a@example.com", "gone@example.com", "b@example.com"])
    ]
    batch.append((replace(MESSAGE, idempotency_key="k3"), ("not an address",)))
    results = deliver_many(email_channel(smtp, tls), batch, allow=LOCAL)
    assert results[0] is None and results[2] is None
    assert results[1] is not None and not results[1].retryable and "550" in results[1].detail
    assert results[3] is not None and "invalid recipient" in results[3].detail
    # The session outlived the refused message: the one after it arrived too.
    assert [mail.rcpt_tos for mail in smtp.received] == [("a@example.com",), ("b@example.com",)]
    assert smtp.sessions == 1


def test_temporarily_refused_recipients_are_retryable(smtp: SmtpServer, tls: TlsFiles) -> None:
    smtp.refuse_recipient("cfo@example.com", "450 4.2.1 Mailbox temporarily unavailable")
    failure = failure_of(email_channel(smtp, tls), allow=LOCAL)
    assert failure.retryable
    assert smtp.received == []


def test_a_server_that_is_down_is_retryable(smtp: SmtpServer, tls: TlsFiles) -> None:
    with refused_port() as port:
        failure = failure_of(email_channel(smtp, tls, port=port), allow=LOCAL)
    assert failure.retryable
    assert "unreachable" in failure.detail


def test_an_untrusted_certificate_is_not_retryable(smtp: SmtpServer, tls: TlsFiles) -> None:
    failure = failure_of(email_channel(smtp, tls, ca_file=None), allow=LOCAL)
    assert not failure.retryable
    assert "certificate not trusted" in failure.detail
    assert smtp.received == []


# aiosmtpd warns about AUTH without STARTTLS, not knowing this connection is TLS throughout.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_delivers(tls: TlsFiles) -> None:
    with smtp_server(tls, implicit_tls=True) as server:
        deliver(email_channel(server, tls, security="tls"), MESSAGE, allow=LOCAL)
        assert len(server.received) == 1


def test_the_smtp_host_must_pass_the_outbound_guard(smtp: SmtpServer, tls: TlsFiles) -> None:
    failure = failure_of(email_channel(smtp, tls))
    assert not failure.retryable
    assert "SMTP host refused" in failure.detail
    assert "loopback" in failure.detail
    assert smtp.received == []


# --- Slack ---------------------------------------------------------------------------------


def test_slack_receives_block_kit_with_escaped_text(recorder: HttpRecorder) -> None:
    deliver(slack_channel(recorder), MESSAGE, allow=LOCAL)

    [request] = recorder.requests
    assert request.method == "POST"
    assert request.path == f"/services/T01/B02/{SLACK_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    payload = request.json()
    assert payload["text"] == "MRR fell 12% &lt;below&gt; threshold &amp; still falling"
    header, text, facts, actions, context = payload["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": MESSAGE.subject, "emoji": True},
    }
    assert text["text"] == {
        "type": "mrkdwn",
        "text": "MRR is $98,000, below the $100,000 threshold set for &lt;Finance&gt;.",
    }
    assert facts["type"] == "section"
    assert [field["text"] for field in facts["fields"]] == [
        "*MRR*\n$98,000",
        "*Threshold*\n&lt; $100,000",
    ]
    assert actions["type"] == "actions"
    assert [(button["text"]["text"], button["url"]) for button in actions["elements"]] == list(
        MESSAGE.links
    )
    assert context["type"] == "context"
    assert "critical" in context["elements"][0]["text"]


def test_slack_respects_block_kit_limits(recorder: HttpRecorder) -> None:
    crowded = Message(
        "k-2",
        "digest",
        Severity.INFO,
        "S" * 200,
        "x" * 2999 + "&",
        facts=tuple((f"KPI {n}", "v" * 2100) for n in range(12)),
        links=tuple((f"Link {n}", f"https://metrics.example.com/{n}") for n in range(7)),
    )
    deliver(slack_channel(recorder), crowded, allow=LOCAL)

    header, text, facts_1, facts_2, actions, _ = recorder.requests[0].json()["blocks"]
    assert len(header["text"]["text"]) == 150
    assert len(text["text"]["text"]) <= 3000
    assert not text["text"]["text"].endswith("&amp")  # an escape is never cut in half
    assert [len(facts_1["fields"]), len(facts_2["fields"])] == [10, 2]
    assert max(len(field["text"]) for field in facts_1["fields"]) == 2000
    assert len(actions["elements"]) == 5


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        (Reply(429, b"rate_limited", (("Retry-After", "30"),)), True),
        (Reply(500, b"rollup_error"), True),
        (Reply(503, b"unavailable"), True),
        (Reply(400, b"invalid_payload"), False),
        (Reply(403, b"action_prohibited"), False),
        (Reply(404, b"no_service"), False),
        (Reply(410, b"channel_is_archived"), False),
    ],
)
def test_slack_answers_map_to_retryable_or_not(reply: Reply, retryable: bool) -> None:
    with http_recorder(reply) as server:
        failure = failure_of(slack_channel(server), allow=LOCAL)
    assert failure.retryable is retryable
    assert reply.body.decode() in failure.detail
    assert f"HTTP {reply.status}" in failure.detail
    assert failure.retry_after == (30 if reply.status == 429 else None)
    assert SLACK_TOKEN not in failure.detail


def test_a_slack_url_echoed_by_the_server_is_masked() -> None:
    with http_recorder(Reply(404, b"")) as server:
        channel = slack_channel(server)
        assert channel.webhook_url is not None
        echo = f"unknown webhook {channel.webhook_url.get_secret_value()}".encode()
        server.reply_with(Reply(404, echo))
        failure = failure_of(channel, allow=LOCAL)
    assert SLACK_TOKEN not in failure.detail
    assert "[secret]" in failure.detail


def test_slack_over_plain_http_needs_the_allow_list(recorder: HttpRecorder) -> None:
    failure = failure_of(slack_channel(recorder))
    assert not failure.retryable
    assert recorder.requests == []
    assert SLACK_TOKEN not in failure.detail
    assert "/services/" not in failure.detail


def test_an_unreachable_slack_is_retryable() -> None:
    with refused_port() as port:
        channel = SlackChannel(
            webhook_url=SecretStr(f"http://127.0.0.1:{port}/services/{SLACK_TOKEN}")
        )
        failure = failure_of(channel, allow=LOCAL)
    assert failure.retryable
    assert "Slack unreachable" in failure.detail
    assert SLACK_TOKEN not in failure.detail


# --- SMS (Twilio) ---------------------------------------------------------------------------


def test_twilio_receives_one_request_per_number() -> None:
    created = Reply(201, json.dumps({"sid": "SM123", "status": "queued"}).encode())
    with http_recorder(created) as server:
        deliver(sms_channel(server), MESSAGE, allow=LOCAL)
        requests = server.requests

    basic = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    assert [request.form()["To"] for request in requests] == [["+14155550100"], ["+14155550101"]]
    for request in requests:
        assert request.method == "POST"
        assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert request.headers["authorization"] == f"Basic {basic}"
        form = request.form()
        assert form["From"] == ["+15005550006"]
        assert form["Body"] == [f"{MESSAGE.subject}\nhttps://metrics.example.com/ack/7"]
        number = form["To"][0]
        token = request.headers["i-twilio-idempotency-token"]
        assert token == f"{MESSAGE.idempotency_key}:{number}"


def test_sms_recipients_of_a_delivery_replace_the_channel_list(recorder: HttpRecorder) -> None:
    recorder.reply_with(Reply(201, b"{}"))
    deliver(sms_channel(recorder), MESSAGE, recipients=["+447700900123"], allow=LOCAL)
    assert [request.form()["To"] for request in recorder.requests] == [["+447700900123"]]


def test_an_invalid_sms_recipient_is_refused_before_sending(recorder: HttpRecorder) -> None:
    failure = failure_of(sms_channel(recorder), recipients=["0044 7700 900123"], allow=LOCAL)
    assert not failure.retryable
    assert "E.164" in failure.detail
    assert recorder.requests == []


def test_a_twilio_error_is_not_retryable_and_explains_itself() -> None:
    error = {
        "code": 21211,
        "message": "The 'To' number +14155550101 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    with http_recorder(Reply(201, b"{}"), Reply(400, json.dumps(error).encode())) as server:
        failure = failure_of(sms_channel(server), allow=LOCAL)
    assert not failure.retryable
    assert "HTTP 400" in failure.detail
    assert "is not a valid phone number" in failure.detail
    assert "21211" in failure.detail
    assert "already sent to 1 other number" in failure.detail
    assert TWILIO_TOKEN not in failure.detail


def test_twilio_unavailable_is_retryable() -> None:
    with http_recorder(Reply(503, b"Service Unavailable")) as server:
        failure = failure_of(sms_channel(server), allow=LOCAL)
        assert len(server.requests) == 1  # the remaining numbers wait for the retry
    assert failure.retryable
    assert TWILIO_TOKEN not in failure.detail


def test_long_sms_keeps_the_link_whole(recorder: HttpRecorder) -> None:
    recorder.reply_with(Reply(201, b"{}"))
    long = Message("k-3", "firing", Severity.WARNING, "s" * 2000, "", links=MESSAGE.links)
    deliver(sms_channel(recorder), long, recipients=["+14155550100"], allow=LOCAL)
    [body] = recorder.requests[0].form()["Body"]
    assert len(body) == 1600
    assert body.endswith("…\nhttps://metrics.example.com/ack/7")


# --- Webhook -------------------------------------------------------------------------------


def test_webhook_body_and_headers(recorder: HttpRecorder) -> None:
    send_webhook(webhook_channel(recorder.url + "/hooks/in"), MESSAGE, LOCAL, now=lambda: NOW + 0.7)

    [request] = recorder.requests
    assert request.path == "/hooks/in"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == MESSAGE.idempotency_key
    assert request.headers["x-execmetrics-timestamp"] == str(NOW)
    assert request.json() == {
        "id": MESSAGE.idempotency_key,
        "event": "firing",
        "severity": "critical",
        "subject": MESSAGE.subject,
        "text": MESSAGE.text,
        "facts": {"MRR": "$98,000", "Threshold": "< $100,000"},
        "links": [{"title": title, "url": url} for title, url in MESSAGE.links],
        "sent_at": "2026-01-01T00:00:00Z",
    }
    compact = json.dumps(request.json(), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    assert request.body == compact.encode()


def test_webhook_signature_verifies_and_resists_tampering(recorder: HttpRecorder) -> None:
    send_webhook(webhook_channel(recorder.url), MESSAGE, LOCAL, now=lambda: NOW)
    [request] = recorder.requests
    timestamp = request.headers["x-execmetrics-timestamp"]
    signature = request.headers["x-execmetrics-signature"]
    body = request.body

    assert signature.startswith("v1=")
    assert verify_webhook_signature(WEBHOOK_SECRET, timestamp, body, signature, now=NOW + 5)
    assert verify_webhook_signature(
        WEBHOOK_SECRET, timestamp, body, f"v1=00, {signature}", now=NOW
    )  # several signatures while a secret is rotated
    assert not verify_webhook_signature(
        "another-secret-16chars", timestamp, body, signature, now=NOW
    )
    tampered = body.replace(b"critical", b"info")
    assert not verify_webhook_signature(WEBHOOK_SECRET, timestamp, tampered, signature, now=NOW)
    assert not verify_webhook_signature(WEBHOOK_SECRET, str(NOW + 1), body, signature, now=NOW)
    assert not verify_webhook_signature(WEBHOOK_SECRET, timestamp, body, signature, now=NOW + 600)
    assert not verify_webhook_signature(WEBHOOK_SECRET, timestamp, body, signature, now=NOW - 600)
    assert not verify_webhook_signature(WEBHOOK_SECRET, "soon", body, signature, now=NOW)
    assert not verify_webhook_signature(WEBHOOK_SECRET, timestamp, body, "v1=é", now=NOW)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/hook", "private"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
    ],
)
def test_webhooks_to_internal_addresses_are_refused(url: str, reason: str) -> None:
    failure = failure_of(webhook_channel(url))
    assert not failure.retryable
    assert failure.detail.startswith("Webhook URL refused:")
    assert reason in failure.detail


def test_a_loopback_webhook_needs_the_allow_list(recorder: HttpRecorder) -> None:
    channel = webhook_channel(recorder.url + "/hook")
    failure = failure_of(channel)
    assert not failure.retryable
    assert "loopback" in failure.detail
    assert recorder.requests == []

    deliver(channel, MESSAGE, allow=["127.0.0.1"])
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (410, False)])
def test_webhook_answers_map_to_retryable_or_not(status: int, retryable: bool) -> None:
    with http_recorder(Reply(status, b"nope")) as server:
        failure = failure_of(webhook_channel(server.url), allow=LOCAL)
    assert failure.retryable is retryable
    assert WEBHOOK_SECRET not in failure.detail


def test_an_untrusted_webhook_certificate_is_not_retryable(tls: TlsFiles) -> None:
    with http_recorder(tls=tls) as server:
        channel = webhook_channel(f"https://localhost:{server.port}/hook")
        failure = failure_of(channel, allow=["localhost"])
        assert server.requests == []
    assert not failure.retryable
    assert "certificate not trusted" in failure.detail


def test_an_unreachable_webhook_is_retryable() -> None:
    with refused_port() as port:
        failure = failure_of(webhook_channel(f"http://127.0.0.1:{port}/"), allow=LOCAL)
    assert failure.retryable


# --- Configuration and secrets --------------------------------------------------------------


SMS = {"kind": "sms", "account_sid": TWILIO_SID, "from_number": "+15005550006"}
EMAIL = {"kind": "email", "host": "smtp.example.com", "sender": "a@example.com"}
WEBHOOK = {"kind": "webhook", "url": "https://hooks.example.com/", "secret": WEBHOOK_SECRET}


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (SMS | {"from_number": "+0123456789"}, "from_number"),
        (SMS | {"from_number": "+1 415 555 0100"}, "from_number"),
        (SMS | {"to": ["4155550100"]}, "to"),
        (SMS | {"account_sid": "AC123"}, "account_sid"),
        (SMS | {"account_sid": "XX" + "0" * 32}, "account_sid"),
        (SMS | {"base_url": "api.twilio.com"}, "base_url"),
        (EMAIL | {"security": "none"}, "security"),
        (EMAIL | {"sender": "not-an-email"}, "sender"),
        (EMAIL | {"to": ["cfo@example.com", "x@@y"]}, "to"),
        (EMAIL | {"host": "smtp example"}, "host"),
        (EMAIL | {"port": 0}, "port"),
        (EMAIL | {"timeout_seconds": 500}, "timeout_seconds"),
        ({"kind": "slack", "webhook_url": "ftp://hooks.slack.com/services/x"}, "webhook_url"),
        (WEBHOOK | {"secret": "too-short"}, "secret"),
        (WEBHOOK | {"url": "https://user:pw@hooks.example.com/"}, "url"),
        (WEBHOOK | {"colour": "red"}, "colour"),
    ],
)
def test_invalid_configuration_names_the_field(config: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as invalid:
        parse_channel(config)
    assert [error["loc"][1] for error in invalid.value.errors()] == [field]


def test_rejected_secrets_are_not_repeated_in_errors() -> None:
    for config in (
        WEBHOOK | {"secret": "short-secret"},
        {"kind": "slack", "webhook_url": f"ftp://hooks.slack.com/services/{SLACK_TOKEN}"},
    ):
        with pytest.raises(ValidationError) as invalid:
            parse_channel(config)
        assert "short-secret" not in str(invalid.value)
        assert SLACK_TOKEN not in str(invalid.value)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1"])
def test_no_tls_is_allowed_to_a_loopback_relay(host: str) -> None:
    channel = parse_channel(
        {"kind": "email", "host": host, "security": "none", "sender": "a@example.com"}
    )
    assert isinstance(channel, EmailChannel)
    assert channel.security == "none"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_channel({"kind": "pager", "url": "https://example.com"})


def all_kinds() -> list[Channel]:
    return [
        EmailChannel(
            host="smtp.example.com",
            username="u",
            password=SecretStr(SMTP_PASSWORD),
            sender="a@example.com",
        ),
        SlackChannel(
            webhook_url=SecretStr(f"https://hooks.slack.com/services/T01/B02/{SLACK_TOKEN}")
        ),
        SmsChannel(
            account_sid=TWILIO_SID, auth_token=SecretStr(TWILIO_TOKEN), from_number="+15005550006"
        ),
        WebhookChannel(url="https://hooks.example.com/in", secret=SecretStr(WEBHOOK_SECRET)),
    ]


SECRETS = (SMTP_PASSWORD, SLACK_TOKEN, TWILIO_TOKEN, WEBHOOK_SECRET)


@pytest.mark.parametrize("channel", all_kinds(), ids=lambda channel: channel.kind)
def test_secrets_never_show(channel: Channel) -> None:
    view = public_view(channel)
    shown = [repr(channel), str(channel), json.dumps(view), channel.model_dump_json()]
    for secret in SECRETS:
        assert all(secret not in text for text in shown)
    assert [
        view[field]
        for field in ("password", "webhook_url", "auth_token", "secret")
        if field in view
    ] == [{"set": True}]


def test_public_view_reports_unset_secrets() -> None:
    view = public_view(WebhookChannel(url="https://hooks.example.com/in"))
    assert view == {
        "kind": "webhook",
        "url": "https://hooks.example.com/in",
        "secret": {"set": False},
        "timeout_seconds": 10,
    }


def test_merge_secrets_keeps_secrets_an_update_leaves_out() -> None:
    old = all_kinds()
    for before, after in zip(old, old, strict=True):
        update = public_view(after) | {
            field: None for field in ("password", "webhook_url", "auth_token", "secret")
        }
        update = {key: value for key, value in update.items() if key in type(after).model_fields}
        merged = merge_secrets(parse_channel(update), before)
        assert merged == before


def test_merge_secrets_takes_a_new_secret_and_edits() -> None:
    old = WebhookChannel(url="https://hooks.example.com/in", secret=SecretStr(WEBHOOK_SECRET))
    edited = merge_secrets(WebhookChannel(url="https://hooks.example.com/v2"), old)
    assert isinstance(edited, WebhookChannel)
    assert edited.url == "https://hooks.example.com/v2"
    assert edited.secret == SecretStr(WEBHOOK_SECRET)
    replaced = merge_secrets(
        WebhookChannel(url=old.url, secret=SecretStr("a-new-secret-of-16+")), old
    )
    assert isinstance(replaced, WebhookChannel)
    assert replaced.secret == SecretStr("a-new-secret-of-16+")


def test_merge_secrets_does_not_follow_a_new_destination() -> None:
    old = EmailChannel(
        host="smtp.example.com",
        username="u",
        password=SecretStr(SMTP_PASSWORD),
        sender="a@example.com",
    )
    moved = merge_secrets(
        EmailChannel(host="smtp.elsewhere.example", username="u", sender="a@example.com"), old
    )
    assert isinstance(moved, EmailChannel)
    assert moved.password is None
    assert missing_secrets(moved) == ("password",)
    other_kind = merge_secrets(WebhookChannel(url="https://hooks.example.com/"), old)
    assert missing_secrets(other_kind) == ("secret",)


def test_missing_secrets() -> None:
    assert [missing_secrets(channel) for channel in all_kinds()] == [(), (), (), ()]
    assert missing_secrets(SlackChannel()) == ("webhook_url",)
    assert missing_secrets(EmailChannel(host="smtp.example.com", sender="a@example.com")) == ()


def test_a_channel_without_its_secret_fails_for_good(recorder: HttpRecorder) -> None:
    failure = failure_of(WebhookChannel(url=recorder.url), allow=LOCAL)
    assert not failure.retryable
    assert "no signing secret" in failure.detail
    assert recorder.requests == []

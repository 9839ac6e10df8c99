"""Email delivery over SMTP, with TLS that verifies the server's certificate."""

from __future__ import annotations

import email.policy
import functools
import hashlib
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from execmetrics.notify.channels import DeliveryFailed, EmailChannel
from execmetrics.notify.message import Message

# Non-ASCII bodies are encoded (quoted-printable or base64), so the message passes any
# relay, including one without 8BITMIME; lines end in CRLF as SMTP requires.
_POLICY = email.policy.SMTP.clone(cte_type="7bit")


def send_email(channel: EmailChannel, message: Message, recipients: Sequence[str]) -> None:
    """Send `message` to `recipients` (envelope and To header) through the channel's server."""
    failure = send_emails(channel, [(message, recipients)])[0]
    if failure is not None:
        raise failure


def send_emails(
    channel: EmailChannel, batch: Sequence[tuple[Message, Sequence[str]]]
) -> list[DeliveryFailed | None]:
    """Send several messages through one SMTP session (connecting, securing and signing in
    once), each to its recipients; what became of each, in order: None when it was accepted.
    A session that breaks is opened again for the messages after it."""
    results: list[DeliveryFailed | None] = []
    smtp: smtplib.SMTP | None = None
    try:
        for message, recipients in batch:
            try:
                if not recipients:
                    raise DeliveryFailed(
                        "no recipients: the channel and the delivery name none", retryable=False
                    )
                if smtp is None:
                    smtp = _open_session(channel)
                composed = compose_email(message, sender=channel.sender, recipients=recipients)
                refused = smtp.send_message(
                    composed, from_addr=channel.sender, to_addrs=list(recipients)
                )
                results.append(_recipients_refused(refused, len(recipients)) if refused else None)
            except DeliveryFailed as failure:
                results.append(failure)
            except (smtplib.SMTPException, OSError) as error:
                results.append(_failure_of(error, len(recipients)))
                if not isinstance(error, smtplib.SMTPRecipientsRefused | smtplib.SMTPDataError):
                    # The session itself failed: the next message opens a new one.
                    if smtp is not None:
                        smtp.close()
                    smtp = None
    finally:
        if smtp is not None:
            _close(smtp)
    return results


def _open_session(channel: EmailChannel) -> smtplib.SMTP:
    smtp = _connect(channel, _tls_context(channel.ca_file))
    try:
        if channel.username:
            password = channel.password.get_secret_value() if channel.password else ""
            smtp.login(channel.username, password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _failure_of(error: smtplib.SMTPException | OSError, attempted: int) -> DeliveryFailed:
    """What a failed send means: whether a later attempt may succeed, and why not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return _recipients_refused(error.recipients, attempted)
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return _reply_failure("authentication failed", error)
    if isinstance(error, smtplib.SMTPResponseException):
        return _reply_failure("the SMTP server refused the message", error)
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return DeliveryFailed(f"SMTP server disconnected: {error}", retryable=True)
    if isinstance(error, smtplib.SMTPException):
        # What the server does not offer (STARTTLS, AUTH): a setting to change, not a glitch.
        return DeliveryFailed(f"SMTP session failed: {error}", retryable=False)
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = f"SMTP server certificate not trusted: {error.verify_message}"
        return DeliveryFailed(detail, retryable=False)
    return DeliveryFailed(f"SMTP server unreachable: {error}", retryable=True)


def compose_email(message: Message, *, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The MIME message: plain text, with an HTML alternative when there is one whose inline
    images travel with it in a multipart/related part."""
    composed = EmailMessage(policy=_POLICY)
    composed["Subject"] = _one_line(message.subject)
    composed["From"] = sender
    composed["To"] = ", ".join(recipients)
    composed["Date"] = format_datetime(datetime.now(UTC))
    composed["Message-ID"] = message_id(message.idempotency_key, sender)
    composed["X-Execmetrics-Idempotency-Key"] = _one_line(message.idempotency_key)
    composed.set_content(message.text)
    if message.html:
        composed.add_alternative(message.html, subtype="html")
        _attach_inline_images(composed, message)
    else:
        # Without HTML to place them, images still reach the reader, as attachments.
        for image in message.images:
            composed.add_attachment(
                image.png, maintype="image", subtype="png", filename=f"{image.content_id}.png"
            )
    return composed


def message_id(idempotency_key: str, sender: str) -> str:
    """A Message-ID that is the same each time the same notification is sent, so a resent
    copy is recognisably the same message. Hashed: the key may hold any characters."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{sender.rpartition('@')[2]}>"


def _attach_inline_images(composed: EmailMessage, message: Message) -> None:
    html_part = next(part for part in composed.iter_parts() if part.get_content_subtype() == "html")
    for image in message.images:
        html_part.add_related(
            image.png,
            maintype="image",
            subtype="png",
            cid=f"<{image.content_id}>",
            disposition="inline",
            filename=f"{image.content_id}.png",
        )


def _connect(channel: EmailChannel, context: ssl.SSLContext) -> smtplib.SMTP:
    timeout = channel.timeout_seconds
    if channel.security == "tls":
        return smtplib.SMTP_SSL(channel.host, channel.port, timeout=timeout, context=context)
    smtp = smtplib.SMTP(channel.host, channel.port, timeout=timeout)
    if channel.security == "starttls":
        try:
            smtp.starttls(context=context)
        except BaseException:
            smtp.close()
            raise
    return smtp


def _close(smtp: smtplib.SMTP) -> None:
    """End the session; a failing QUIT after the message was accepted changes nothing."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


@functools.lru_cache(maxsize=32)
def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A context that verifies certificates against the system's CAs and, if set, the
    channel's own CA file (a private relay's CA). Built once per CA file and shared between
    threads: loading the system's CA bundle costs tens of milliseconds, more than sending."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as error:
            detail = f"cannot load the CA file {ca_file}: {error}"
            raise DeliveryFailed(detail, retryable=False) from error
    return context


def _reply_failure(what: str, error: smtplib.SMTPResponseException) -> DeliveryFailed:
    """A 4xx reply is the server asking to try later; a 5xx reply is final."""
    code = error.smtp_code
    return DeliveryFailed(
        f"{what}: {code} {_reply_text(error.smtp_error)}", retryable=400 <= code < 500
    )


def _recipients_refused(refused: Mapping[str, tuple[int, bytes]], attempted: int) -> DeliveryFailed:
    """Refused recipients are worth a retry only if every refusal was temporary. A retry goes
    to all recipients again; the repeated Message-ID lets mail clients see the duplicate."""
    listed = "; ".join(
        f"{address}: {code} {_reply_text(reply)}" for address, (code, reply) in refused.items()
    )
    temporary = all(400 <= code < 500 for code, _ in refused.values())
    detail = f"the SMTP server refused {len(refused)} of {attempted} recipients ({listed})"
    return DeliveryFailed(detail, retryable=temporary)


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _one_line(text: str) -> str:
    # A header must not carry a line break; one would also let a value add its own headers.
    return " ".join(text.splitlines())

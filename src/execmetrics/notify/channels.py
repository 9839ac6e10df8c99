"""Notification channel configurations, and the delivery of a message through one of them.

A channel's secrets (the SMTP password, the Slack webhook URL, the Twilio auth token, the
webhook signing secret) are write-only: `public_view` shows only whether each is set, an
update may leave them out to keep the stored ones, and repr() masks them.
"""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal, NoReturn, TypeAlias, assert_never

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)

from execmetrics.notify.message import Message
from execmetrics.notify.urls import (
    UnsafeUrl,
    check_outbound_host,
    check_url_syntax,
    guarded_client,
    is_host_name_or_address,
    is_loopback_host,
)

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_ADDRESS = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>[^@\s]+)")
_PHONE_NUMBER = r"^\+[1-9][0-9]{6,14}$"  # E.164; [0-9], not \d, which also takes other scripts
_USER_AGENT = "execmetrics"


def _email_address(value: str) -> str:
    match = _EMAIL_ADDRESS.fullmatch(value)
    if (
        match is None
        or len(value) > 254
        or len(match["local"]) > 64
        or not is_host_name_or_address(match["domain"])
    ):
        raise ValueError(f"{value!r} is not an email address such as ops@example.com")
    return value


def _web_url(value: str) -> str:
    try:
        check_url_syntax(value)
    except UnsafeUrl as error:
        raise ValueError(error.reason) from None  # the reason never repeats the URL
    return value


EmailAddress = Annotated[str, AfterValidator(_email_address)]
PhoneNumber = Annotated[str, StringConstraints(pattern=_PHONE_NUMBER)]
WebUrl = Annotated[str, AfterValidator(_web_url)]

# Inputs stay out of error messages: a rejected value may be a secret.
_CONFIG = ConfigDict(extra="forbid", hide_input_in_errors=True)


class EmailChannel(BaseModel):
    model_config = _CONFIG

    kind: Literal["email"] = "email"
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: EmailAddress
    to: list[EmailAddress] = Field(default_factory=list)
    timeout_seconds: float = Field(default=10, ge=1, le=120)
    ca_file: str | None = None  # a PEM file of CA certificates to trust besides the system's

    @field_validator("host")
    @classmethod
    def _host_is_a_host(cls, host: str) -> str:
        if not is_host_name_or_address(host):
            raise ValueError("must be a host name or an IP address, such as smtp.example.com")
        return host

    @field_validator("security")
    @classmethod
    def _plaintext_only_to_loopback(cls, security: str, info: ValidationInfo) -> str:
        # Without TLS the password and the messages cross the network in clear.
        host = info.data.get("host")
        if security == "none" and isinstance(host, str) and not is_loopback_host(host):
            raise ValueError("'none' is only allowed for a loopback host such as localhost")
        return security


class SlackChannel(BaseModel):
    model_config = _CONFIG

    kind: Literal["slack"] = "slack"
    webhook_url: SecretStr | None = None  # the URL itself grants posting: a secret

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url_is_web(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None:
            _web_url(url.get_secret_value())
        return url


class SmsChannel(BaseModel):
    model_config = _CONFIG

    kind: Literal["sms"] = "sms"
    account_sid: Annotated[str, StringConstraints(pattern=r"^AC[0-9a-fA-F]{32}$")]
    auth_token: SecretStr | None = None
    from_number: PhoneNumber
    to: list[PhoneNumber] = Field(default_factory=list)
    base_url: WebUrl = "https://api.twilio.com"


class WebhookChannel(BaseModel):
    model_config = _CONFIG

    kind: Literal["webhook"] = "webhook"
    url: WebUrl
    secret: SecretStr | None = None  # the HMAC key receivers verify signatures with
    timeout_seconds: float = Field(default=10, ge=1, le=120)

    @field_validator("secret")
    @classmethod
    def _secret_is_long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters long")
        return secret


Channel: TypeAlias = Annotated[
    EmailChannel | SlackChannel | SmsChannel | WebhookChannel, Field(discriminator="kind")
]
_CHANNEL = TypeAdapter[Channel](Channel, config=ConfigDict(hide_input_in_errors=True))

SECRET_FIELDS: Mapping[str, tuple[str, ...]] = {
    "email": ("password",),
    "slack": ("webhook_url",),
    "sms": ("auth_token",),
    "webhook": ("secret",),
}
# Where a channel sends its secret. A stored secret is kept by an update only while this is
# unchanged: otherwise editing the host would send the kept password to a server of the
# editor's choosing, and secrets are meant to be write-only.
_DESTINATION_FIELDS: Mapping[str, tuple[str, ...]] = {
    "email": ("host",),
    "slack": (),
    "sms": ("base_url",),
    "webhook": (),
}


class DeliveryFailed(Exception):
    """A message that did not reach its channel. `retryable` says whether sending the same
    message later may succeed; `detail` is safe to log and show: it never holds a secret.
    `retry_after` is the wait in seconds the service asked for, if it said."""

    def __init__(self, detail: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after


def parse_channel(data: Mapping[str, object]) -> Channel:
    """A channel configuration from JSON-like data; pydantic's ValidationError if invalid."""
    return _CHANNEL.validate_python(data)


def public_view(channel: Channel) -> dict[str, object]:
    """The configuration as JSON-able data, each secret replaced by whether it is set."""
    view: dict[str, object] = channel.model_dump(mode="json")
    for field in SECRET_FIELDS[channel.kind]:
        view[field] = {"set": getattr(channel, field) is not None}
    return view


def merge_secrets(new: Channel, old: Channel | None) -> Channel:
    """`new` with each secret it leaves out taken from `old`, so an edit need not re-type
    secrets. Nothing is kept across kinds, nor when the destination (SMTP host, Twilio base
    URL) changes: a new destination must be given its secret explicitly."""
    if old is None or old.kind != new.kind or _destination(new) != _destination(old):
        return new
    kept = {
        field: getattr(old, field)
        for field in SECRET_FIELDS[new.kind]
        if getattr(new, field) is None
    }
    return new.model_copy(update=kept)


def missing_secrets(channel: Channel) -> tuple[str, ...]:
    """The secret fields the channel needs to deliver but does not have."""
    if isinstance(channel, EmailChannel):
        return ("password",) if channel.username and channel.password is None else ()
    return tuple(field for field in SECRET_FIELDS[channel.kind] if getattr(channel, field) is None)


def deliver(
    channel: Channel,
    message: Message,
    *,
    recipients: Sequence[str] = (),
    allow: Sequence[str] = (),
) -> None:
    """Send `message` through `channel`, or raise DeliveryFailed. `recipients`, when given,
    replace the channel's own `to` list for email and SMS (a user's own address, say); Slack
    and webhooks have a single destination and ignore them. `allow` is the outbound allow
    list (see urls.py)."""
    # The senders use this module's models and errors, so they are imported on first use.
    from execmetrics.notify import email, slack, sms, webhook

    try:
        match channel:
            case EmailChannel():
                _check_smtp_host(channel, allow)
                email.send_email(channel, message, _email_recipients(channel, recipients))
            case SlackChannel():
                slack.send_slack(channel, message, allow)
            case SmsChannel():
                sms.send_sms(channel, message, _sms_recipients(channel, recipients), allow)
            case WebhookChannel():
                webhook.send_webhook(channel, message, allow)
            case _:
                assert_never(channel)
    except DeliveryFailed as failure:
        _reraise_redacted(failure, _secret_values(channel))


def deliver_many(
    channel: Channel,
    batch: Sequence[tuple[Message, Sequence[str]]],
    *,
    allow: Sequence[str] = (),
) -> list[DeliveryFailed | None]:
    """Send several messages through `channel`, each to its recipients as `deliver` would;
    what became of each, in order (None: delivered). Email shares one SMTP session among
    them, which is what makes a thousand emails a matter of seconds rather than minutes."""
    from execmetrics.notify import email

    if not isinstance(channel, EmailChannel):
        return [_attempt(channel, message, recipients, allow) for message, recipients in batch]
    try:
        _check_smtp_host(channel, allow)
    except DeliveryFailed as failure:
        return [failure] * len(batch)
    addressed: list[tuple[Message, Sequence[str]]] = []
    failures: dict[int, DeliveryFailed] = {}
    for index, (message, recipients) in enumerate(batch):
        try:
            addressed.append((message, _email_recipients(channel, recipients)))
        except DeliveryFailed as failure:
            failures[index] = failure
            addressed.append((message, []))
    sent = email.send_emails(
        channel, [item for i, item in enumerate(addressed) if i not in failures]
    )
    results = iter(sent)
    secrets = _secret_values(channel)
    return [
        failures[index] if index in failures else _redacted(next(results), secrets)
        for index in range(len(batch))
    ]


def _attempt(
    channel: Channel, message: Message, recipients: Sequence[str], allow: Sequence[str]
) -> DeliveryFailed | None:
    try:
        deliver(channel, message, recipients=recipients, allow=allow)
    except DeliveryFailed as failure:
        return failure
    return None


def _redacted(failure: DeliveryFailed | None, secrets: Sequence[str]) -> DeliveryFailed | None:
    if failure is None:
        return None
    try:
        _reraise_redacted(failure, secrets)
    except DeliveryFailed as redacted:
        return redacted


def post_outbound(
    url: str,
    allow: Sequence[str],
    *,
    service: str,
    timeout: float,
    https_only: bool = False,
    content: bytes | None = None,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> httpx.Response:
    """POST through the outbound guard. A refused URL fails for good, a network failure may
    pass; the caller judges the response. `service` names the other end in messages."""
    try:
        with guarded_client(allow, timeout=timeout, https_only=https_only) as client:
            return client.post(
                url,
                content=content,
                data=data,
                headers={"User-Agent": _USER_AGENT, **(headers or {})},
                auth=httpx.BasicAuth(*auth) if auth else httpx.USE_CLIENT_DEFAULT,
            )
    except UnsafeUrl as error:
        raise DeliveryFailed(f"{service} URL refused: {error.reason}", retryable=False) from None
    except httpx.InvalidURL:
        raise DeliveryFailed(f"{service} URL is not a valid URL", retryable=False) from None
    except httpx.RequestError as error:
        if _caused_by_untrusted_certificate(error):
            detail = f"{service} certificate not trusted: {error}"
            raise DeliveryFailed(detail, retryable=False) from error
        raise DeliveryFailed(
            f"{service} unreachable: {type(error).__name__}: {error}", retryable=True
        ) from error


def http_failure(
    response: httpx.Response, service: str, explanation: str | None = None
) -> DeliveryFailed:
    """The failure an unsuccessful response means. Rate limiting, timeouts and server errors
    may pass; any other refusal (4xx, or a redirect, which is not followed) will not."""
    status = response.status_code
    retryable = status in (408, 429) or status >= 500
    said = _short_text(response.text) if explanation is None else explanation
    return DeliveryFailed(
        f"{service} answered HTTP {status}" + (f": {said}" if said else ""),
        retryable=retryable,
        retry_after=_retry_after(response) if retryable else None,
    )


def _caused_by_untrusted_certificate(error: BaseException) -> bool:
    """Whether a certificate check failed somewhere down the chain of causes: a setting to
    fix (or an interception to investigate), not a passing network problem."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _check_smtp_host(channel: EmailChannel, allow: Sequence[str]) -> None:
    try:
        check_outbound_host(channel.host, allow)
    except UnsafeUrl as error:
        raise DeliveryFailed(f"SMTP host refused: {error.reason}", retryable=False) from None


def _email_recipients(channel: EmailChannel, recipients: Sequence[str]) -> list[str]:
    chosen = list(recipients) or channel.to
    try:
        return [_email_address(address) for address in chosen]
    except ValueError as error:
        raise DeliveryFailed(f"invalid recipient: {error}", retryable=False) from None


def _sms_recipients(channel: SmsChannel, recipients: Sequence[str]) -> list[str]:
    chosen = list(recipients) or channel.to
    invalid = [number for number in chosen if not re.fullmatch(_PHONE_NUMBER, number)]
    if invalid:
        raise DeliveryFailed(
            f"invalid recipient number {invalid[0]!r}: expected E.164 such as +14155550100",
            retryable=False,
        )
    return chosen


def _destination(channel: Channel) -> tuple[str, ...]:
    return tuple(
        str(getattr(channel, field)).lower() for field in _DESTINATION_FIELDS[channel.kind]
    )


def _secret_values(channel: Channel) -> list[str]:
    """Every form in which a channel's secrets could surface in a failure's detail."""
    values = []
    for field in SECRET_FIELDS[channel.kind]:
        secret = getattr(channel, field)
        if isinstance(secret, SecretStr) and secret.get_secret_value():
            values.append(secret.get_secret_value())
    if isinstance(channel, SlackChannel) and channel.webhook_url is not None:
        path = httpx.URL(channel.webhook_url.get_secret_value()).path
        if len(path) > 1:
            values.append(path)  # the secret part of the URL, should a server echo it
    if isinstance(channel, SmsChannel) and channel.auth_token is not None:
        credentials = f"{channel.account_sid}:{channel.auth_token.get_secret_value()}"
        values.append(base64.b64encode(credentials.encode()).decode())
    return values


def _reraise_redacted(failure: DeliveryFailed, secrets: Sequence[str]) -> NoReturn:
    """Re-raise `failure`, with any secret in its detail masked: a last line of defence for
    a remote server that echoes what it was sent."""
    detail = failure.detail
    for secret in sorted(secrets, key=len, reverse=True):
        detail = detail.replace(secret, "[secret]")
    if detail == failure.detail:
        raise failure
    raise DeliveryFailed(
        detail, retryable=failure.retryable, retry_after=failure.retry_after
    ) from None


def _short_text(text: str, limit: int = 200) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None

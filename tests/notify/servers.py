"""Real local servers for notification tests: an SMTP server with STARTTLS and AUTH, an HTTP
server that records requests and answers from a script, a port that refuses connections,
and a throwaway certificate authority for the TLS they speak.

Each server is a context manager, so a fixture is `with smtp_server(tls) as server: yield
server`.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SMTP_USERNAME = "notifier"
SMTP_PASSWORD = "smtp-password-not-for-logs"


@dataclass(frozen=True)
class TlsFiles:
    """A CA certificate, and a server certificate it signed for localhost, 127.0.0.1, ::1."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_tls_files(directory: Path) -> TlsFiles:
    """Write a fresh CA and a localhost server certificate (with its key) into `directory`."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "execmetrics test CA")])
    ca_cert = (
        _certificate_builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    server_cert = (
        _certificate_builder(server_name, ca_name, server_key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(authority, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def _certificate_builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
    )


def _key_usage(*, certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificates,
        crl_sign=certificates,
        encipher_only=False,
        decipher_only=False,
    )


# --- SMTP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    def parsed(self) -> EmailMessage:
        message = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


class SmtpServer:
    """What the SMTP server received, and how it answers. Its handler hooks run on the
    server's own thread, hence the lock."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.username = SMTP_USERNAME
        self.password = SMTP_PASSWORD
        self._data_reply = "250 Message accepted for delivery"
        self._refused_recipients: dict[str, str] = {}
        self._received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self.sessions = 0  # sessions that signed in

    @property
    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    def reply_to_data(self, reply: str) -> None:
        """Answer DATA with `reply`, such as "451 4.3.0 Try again later"."""
        with self._lock:
            self._data_reply = reply

    def refuse_recipient(self, address: str, reply: str) -> None:
        """Answer RCPT TO for `address` with `reply`, such as "550 5.1.1 No such user"."""
        with self._lock:
            self._refused_recipients[address] = reply

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator: the test username and password, by LOGIN or PLAIN."""
        valid = isinstance(data, LoginPassword) and (
            data.login.decode() == self.username and data.password.decode() == self.password
        )
        if valid:
            with self._lock:
                self.sessions += 1
        # handled=False: aiosmtpd itself answers, 235 or 535.
        return AuthResult(success=valid, handled=False)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self._lock:
            refusal = self._refused_recipients.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            reply = self._data_reply
            if reply.startswith("250"):
                content = envelope.original_content or b""
                mail = ReceivedMail(envelope.mail_from or "", tuple(envelope.rcpt_tos), content)
                self._received.append(mail)
        return reply


class _ControllerOnSocket(Controller):
    """aiosmtpd's controller, serving a socket bound in advance to a free port (the
    controller itself needs the port number before it starts)."""

    def __init__(self, handler: SmtpServer, listening: socket.socket, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=handler.port, **kwargs)
        self._listening = listening

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker, sock=self._listening, ssl=self.ssl_context
        )


@contextmanager
def smtp_server(tls: TlsFiles, *, implicit_tls: bool = False) -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 requiring TLS and AUTH (LOGIN or PLAIN) with
    SMTP_USERNAME and SMTP_PASSWORD. STARTTLS on a plain connection by default; with
    `implicit_tls`, TLS from the first byte (the "tls" security of a channel)."""
    listening = socket.create_server(("127.0.0.1", 0))
    server = SmtpServer(host="127.0.0.1", port=listening.getsockname()[1])
    if implicit_tls:
        # aiosmtpd only counts STARTTLS as TLS for AUTH; this connection is TLS throughout.
        encryption: dict[str, Any] = {
            "ssl_context": tls.server_context(),
            "auth_require_tls": False,
        }
    else:
        encryption = {"tls_context": tls.server_context(), "require_starttls": True}
    controller = _ControllerOnSocket(
        server,
        listening,
        server_hostname="localhost",
        authenticator=server,
        auth_required=True,
        **encryption,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound but not listening: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


# --- HTTP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds before answering, as a server that hangs


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


class HttpRecorder:
    """Records every request and answers with the scripted replies in turn, repeating the
    last one when the script runs out."""

    def __init__(self, replies: tuple[Reply, ...], port: int, scheme: str) -> None:
        self.port = port
        self.url = f"{scheme}://127.0.0.1:{port}"
        self._replies = list(replies) or [Reply()]
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reply_with(self, *replies: Reply) -> None:
        with self._lock:
            self._replies = list(replies)

    def record(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    recorder: HttpRecorder
    tls_context: ssl.SSLContext | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that give up, such as one refusing the certificate."""
        if not isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            super().handle_error(request, client_address)


class _RecordingHandler(BaseHTTPRequestHandler):
    server: _RecordingServer

    def setup(self) -> None:
        # TLS is set up here, on the request's thread, so one slow client holds up no other.
        if self.server.tls_context is not None:
            self.request = self.server.tls_context.wrap_socket(self.request, server_side=True)
        super().setup()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length),
        )
        reply = self.server.recorder.record(request)
        time.sleep(reply.delay)
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorder's requests are what tests look at."""


@contextmanager
def http_recorder(*replies: Reply, tls: TlsFiles | None = None) -> Iterator[HttpRecorder]:
    """An HTTP server on 127.0.0.1 (HTTPS with `tls`) that records requests and answers
    with `replies` (default: 200 "ok")."""
    server = _RecordingServer(("127.0.0.1", 0), _RecordingHandler)
    server.tls_context = tls.server_context() if tls is not None else None
    server.recorder = HttpRecorder(replies, server.server_address[1], "https" if tls else "http")
    # A short poll interval: shutdown() waits for the serving loop to notice.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

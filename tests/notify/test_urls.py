"""The outbound guard refuses what would reach the server's own network, and the guarded
client connects to the addresses it checked, with TLS still verified for the host name."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from tests.notify.servers import HttpRecorder, Reply, TlsFiles, http_recorder, make_tls_files

from execmetrics.notify.urls import (
    UnsafeUrl,
    check_outbound_host,
    check_outbound_url,
    check_url_syntax,
    guarded_client,
    is_loopback_host,
    parse_allow_list,
)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/hook", "private"),
        ("http://192.168.1.20/hook", "private"),
        ("http://127.0.0.1:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "link-local"),  # ::ffff:169.254.169.254
        ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 form of 10.0.0.1
        ("http://[fe80::1]/", "link-local"),
        ("http://100.64.1.1/", "shared address space"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://localhost/", "loopback"),
        ("https://LocalHost/", "loopback"),
        ("http://2130706433/", "loopback"),  # 127.0.0.1 written as one number
    ],
)
def test_refuses_urls_reaching_non_public_addresses(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_outbound_url(url, allow=())
    assert reason in refused.value.reason
    assert "allow list" in refused.value.reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://93.184.215.14/file", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://93.184.215.14/", "scheme 'gopher'"),
        ("http:///path-only", "no host"),
        ("https://admin:hunter2-password@93.184.215.14/", "credentials"),
    ],
)
def test_refuses_malformed_urls(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_outbound_url(url, allow=["93.184.215.14"])
    assert reason in refused.value.reason
    with pytest.raises(UnsafeUrl):
        check_url_syntax(url)


def test_the_message_names_the_url_but_not_its_credentials() -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_outbound_url("https://admin:hunter2-password@93.184.215.14/x", allow=())
    assert "93.184.215.14/x" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_the_reason_names_the_address_a_host_resolves_to() -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_outbound_url("http://localhost:9/", allow=())
    assert str(refused.value).startswith("refused outbound connection to http://localhost:9/")
    assert "localhost (127.0.0.1) is a loopback address" in refused.value.reason


def test_a_public_literal_address_is_accepted_without_resolving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_resolution(*args: object, **kwargs: object) -> None:
        raise AssertionError("a literal address must not be resolved")

    monkeypatch.setattr(socket, "getaddrinfo", no_resolution)
    check_outbound_url("https://93.184.215.14/hooks/alert", allow=())
    check_outbound_url("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/", allow=())
    check_outbound_host("93.184.215.14", allow=())


def test_an_unresolvable_host_is_refused() -> None:
    # A label longer than 63 characters fails before any query leaves the machine.
    with pytest.raises(UnsafeUrl) as refused:
        check_outbound_host("x" * 64 + ".example", allow=())
    assert "cannot resolve" in refused.value.reason


def test_allow_list_networks_permit_the_addresses_inside_them() -> None:
    check_outbound_url("http://10.1.2.3/hook", allow=["10.1.0.0/16"])
    check_outbound_url("http://127.0.0.1:8080/", allow=["127.0.0.1/32"])
    check_outbound_url("http://127.0.0.1:8080/", allow=["127.0.0.1"])
    check_outbound_url("http://[::ffff:127.0.0.1]/", allow=["127.0.0.1"])
    check_outbound_url("http://[::1]/", allow=["::1"])
    with pytest.raises(UnsafeUrl):
        check_outbound_url("http://10.2.0.1/hook", allow=["10.1.0.0/16"])
    with pytest.raises(UnsafeUrl):
        check_outbound_url("http://169.254.169.254/", allow=["10.0.0.0/8"])


def test_an_allowed_host_name_permits_what_it_resolves_to() -> None:
    check_outbound_url("http://LOCALHOST:8025/", allow=["localhost"])
    check_outbound_url("http://localhost/", allow=["Localhost."])
    check_outbound_host("localhost", allow=["localhost"])
    with pytest.raises(UnsafeUrl):
        check_outbound_url("http://127.0.0.1/", allow=["localhost"])  # the name, not the address


def test_https_only_accepts_http_just_for_a_host_the_allow_list_names() -> None:
    check_outbound_url("https://93.184.215.14/", allow=(), https_only=True)
    with pytest.raises(UnsafeUrl) as refused:
        check_outbound_url("http://93.184.215.14/", allow=(), https_only=True)
    assert "plain http" in refused.value.reason
    check_outbound_url("http://127.0.0.1:9/", allow=["127.0.0.1"], https_only=True)
    check_outbound_url("http://localhost:9/", allow=["localhost"], https_only=True)


def test_smtp_hosts_are_checked_like_url_hosts() -> None:
    for host in ("127.0.0.1", "[::1]", "::1", "10.0.0.25", "localhost"):
        with pytest.raises(UnsafeUrl):
            check_outbound_host(host, allow=())
    check_outbound_host("127.0.0.1", allow=["127.0.0.0/8"])


def test_parse_allow_list_normalises_entries() -> None:
    parsed = parse_allow_list(" Hooks.Internal.Example, 10.1.0.0/16,127.0.0.1 ,, ::1,10.1.0.0/16")
    assert parsed == ("hooks.internal.example", "10.1.0.0/16", "127.0.0.1/32", "::1/128")
    assert parse_allow_list("") == ()


@pytest.mark.parametrize(
    "entry", ["10.0.0.1/33", "10.1.2.3/16", "exa mple.com", "*.example.com", "http://x", "10.1"]
)
def test_parse_allow_list_names_the_bad_entry(entry: str) -> None:
    with pytest.raises(ValueError, match="allow-list entry") as error:
        parse_allow_list(f"localhost, {entry}")
    assert repr(entry) in str(error.value)


def test_loopback_host_names() -> None:
    assert is_loopback_host("localhost")
    assert is_loopback_host("127.0.0.2")
    assert is_loopback_host("[::1]")
    assert not is_loopback_host("smtp.example.com")
    assert not is_loopback_host("10.0.0.1")


@pytest.fixture
def https_recorder(tls: TlsFiles) -> Iterator[HttpRecorder]:
    with http_recorder(tls=tls) as recorder:
        yield recorder


@pytest.fixture
def https_server(https_recorder: HttpRecorder) -> str:
    return f"https://localhost:{https_recorder.port}/hook"


def test_the_guarded_client_connects_to_the_checked_address_with_tls_for_the_name(
    tls: TlsFiles, https_recorder: HttpRecorder, https_server: str
) -> None:
    with guarded_client(["localhost"], timeout=5, verify=tls.client_context()) as client:
        response = client.post(https_server, content=b"{}")
    assert response.status_code == 200
    assert response.text == "ok"
    [request] = https_recorder.requests
    assert request.headers["host"] == f"localhost:{https_recorder.port}"


def test_the_guarded_client_refuses_before_connecting(tls: TlsFiles, https_server: str) -> None:
    with (
        guarded_client([], timeout=5, verify=tls.client_context()) as client,
        pytest.raises(UnsafeUrl),
    ):
        client.post(https_server, content=b"{}")


def test_the_guarded_client_still_verifies_certificates(https_server: str) -> None:
    # Without the test CA the certificate is untrusted, pinned address or not.
    with (
        guarded_client(["localhost"], timeout=5) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.post(https_server, content=b"{}")


def test_the_guarded_client_does_not_follow_redirects() -> None:
    redirect = Reply(302, b"", (("Location", "http://169.254.169.254/latest/meta-data/"),))
    with http_recorder(redirect) as recorder, guarded_client(["127.0.0.1"], timeout=5) as client:
        response = client.post(recorder.url + "/hook", content=b"{}")
    assert response.status_code == 302
    assert len(recorder.requests) == 1

"""The outbound connection guard: a notification channel must not become a way to reach the
server's own network (SSRF), such as a cloud metadata endpoint or an internal admin service.

A host is checked by what it resolves to, not by how it is spelled, so "2130706433",
"localhost" and "[::ffff:127.0.0.1]" are all seen as loopback. The HTTP client from
`guarded_client` then connects only to the addresses that were checked, so a DNS answer
that changes between the check and the connection (DNS rebinding) cannot get round it.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Sequence

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEMES = ("http", "https")
_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")


class UnsafeUrl(ValueError):
    """An outbound URL or host the guard refuses. `reason` never repeats the URL, so callers
    whose URL is itself a secret (a Slack webhook) can show the reason alone."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"refused outbound connection to {target}: {reason}")
        self.target = target
        self.reason = reason


def parse_allow_list(text: str) -> tuple[str, ...]:
    """The comma-separated allow list of a setting, each entry validated and normalised:
    host names lower-cased, addresses and networks written as CIDR networks."""
    entries: list[str] = []
    for item in text.split(","):
        if item.strip():
            entry = str(_allow_entry(item))
            if entry not in entries:
                entries.append(entry)
    return tuple(entries)


def check_outbound_url(url: str, allow: Sequence[str], *, https_only: bool = False) -> None:
    """Raise UnsafeUrl unless `url` is an http(s) URL whose host resolves only to public
    addresses or is permitted by `allow`. With `https_only`, plain http is accepted only for
    a host the allow list names (a local relay, a test server)."""
    _vet_url(_parse_url(url), allow, https_only=https_only)


def check_outbound_host(host: str, allow: Sequence[str]) -> None:
    """Raise UnsafeUrl unless `host` (a name or an IP address) resolves only to public
    addresses or is permitted by `allow`: the check for non-HTTP connections such as SMTP."""
    _vetted_addresses(host.strip(), 0, allow, target=host)


def check_literal_destination(host: str, allow: Sequence[str]) -> None:
    """At configuration time, without consulting the network: raise UnsafeUrl when `host` is
    an address literal or "localhost" that the guard would refuse. Host names are checked
    when they are used, since what they resolve to may change."""
    name = host.strip().lower().rstrip(".").strip("[]")
    if name == "localhost" or _literal_address(name) is not None:
        check_outbound_host(name, allow)


def check_url_syntax(url: str) -> None:
    """The checks that need no resolution: an http(s) URL with a host and no credentials.
    Suits validating configuration, where the network must not be consulted."""
    _check_url_parts(_parse_url(url))


def is_loopback_host(host: str) -> bool:
    """Whether `host` is "localhost" or a loopback address literal, without resolving it."""
    name = host.strip().lower().rstrip(".")
    if name == "localhost":
        return True
    address = _literal_address(name)
    return address is not None and address.is_loopback


def is_host_name_or_address(text: str) -> bool:
    """Whether `text` is syntactically a DNS host name or an IP address literal."""
    name = text.strip().lower().rstrip(".")
    return _literal_address(name) is not None or _is_host_name(name)


def guarded_client(
    allow: Sequence[str],
    *,
    timeout: float,
    https_only: bool = False,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """An HTTP client whose every request passes the guard. Redirects are not followed (a
    redirect could lead anywhere) and proxy settings from the environment are ignored,
    because a proxy would resolve the host itself and defeat the address pinning."""
    return httpx.Client(
        transport=GuardedTransport(allow, https_only=https_only, verify=verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


class GuardedTransport(httpx.BaseTransport):
    """Checks each request's URL, then connects to the checked addresses themselves while
    keeping the original host for the Host header and for TLS (SNI and certificate check)."""

    def __init__(
        self,
        allow: Sequence[str],
        *,
        https_only: bool = False,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._allow = tuple(allow)
        self._https_only = https_only
        self._inner = httpx.HTTPTransport(verify=_system_tls() if verify is True else verify)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        addresses = _vet_url(request.url, self._allow, https_only=self._https_only)
        host = request.url.raw_host.decode("ascii")
        failure: httpx.TransportError | None = None
        for address in addresses:
            try:
                return self._inner.handle_request(_pinned(request, address, host))
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                failure = error  # nothing was sent: the next address may answer
        assert failure is not None, "a vetted host has at least one address"
        raise failure

    def close(self) -> None:
        self._inner.close()


@functools.cache
def _system_tls() -> ssl.SSLContext:
    """The verifying TLS context, built once: loading the CA bundle takes a while, and a
    context can be shared between threads."""
    return httpx.create_ssl_context()


def _pinned(request: httpx.Request, address: IPAddress, host: str) -> httpx.Request:
    """`request` sent to `address`; its headers (Host included) stay as they were."""
    return httpx.Request(
        request.method,
        request.url.copy_with(host=str(address)),
        headers=request.headers,
        stream=request.stream,
        extensions={**request.extensions, "sni_hostname": host},
    )


def _parse_url(url: str) -> httpx.URL:
    # The same parser as the HTTP client, so the guard checks the host that is connected to.
    try:
        return httpx.URL(url)
    except httpx.InvalidURL as error:
        raise UnsafeUrl("the URL", f"not a valid URL ({error})") from None


def _check_url_parts(url: httpx.URL) -> None:
    target = _display(url)
    if url.scheme not in _SCHEMES:
        raise UnsafeUrl(target, f"scheme {url.scheme!r} is not allowed, only http and https")
    if url.userinfo:
        raise UnsafeUrl(target, "the URL carries user credentials")
    if not url.raw_host:
        raise UnsafeUrl(target, "the URL has no host")


def _vet_url(url: httpx.URL, allow: Sequence[str], *, https_only: bool) -> tuple[IPAddress, ...]:
    _check_url_parts(url)
    host = url.raw_host.decode("ascii")
    if https_only and url.scheme == "http" and not _host_named(host, allow):
        raise UnsafeUrl(
            _display(url), f"plain http is only allowed to a host the allow list names, not {host}"
        )
    port = url.port or (443 if url.scheme == "https" else 80)
    return _vetted_addresses(host, port, allow, target=_display(url))


def _vetted_addresses(
    host: str, port: int, allow: Sequence[str], *, target: str
) -> tuple[IPAddress, ...]:
    """The addresses `host` resolves to, once each is known to be public or allowed."""
    entries = [_allow_entry(entry) for entry in allow]
    networks = [entry for entry in entries if not isinstance(entry, str)]
    addresses = _resolve(host, port, target)
    if _normalised_name(host) in entries:
        return addresses
    for address in addresses:
        reason = _private_reason(address)
        if reason is not None and not _in_networks(address, networks):
            where = host if _literal_address(host) is not None else f"{host} ({address})"
            raise UnsafeUrl(target, f"{where} is {reason}; add it to the allow list to permit it")
    return addresses


def _resolve(host: str, port: int, target: str) -> tuple[IPAddress, ...]:
    literal = _literal_address(host)
    if literal is not None:
        return (literal,)
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl(target, f"cannot resolve host {host}") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in answers:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeUrl(target, f"cannot resolve host {host}")
    return tuple(addresses)


def _private_reason(address: IPAddress) -> str | None:
    """Why `address` must not be reached from here, or None for a public address. An IPv6
    form that carries an IPv4 address (mapped, NAT64) is judged by that IPv4 address."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return _private_reason(embedded)
    checks = (
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address in _SHARED_ADDRESS_SPACE, "in the shared address space 100.64.0.0/10"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a globally routable address"),
    )
    return next((reason for applies, reason in checks if applies), None)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _in_networks(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    candidates = [address]
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        candidates.append(embedded)
    return any(candidate in network for candidate in candidates for network in networks)


def _host_named(host: str, allow: Sequence[str]) -> bool:
    """Whether the allow list names `host` itself: its name, or a network holding the literal
    address. Unlike the resolution check, this never consults DNS."""
    entries = [_allow_entry(entry) for entry in allow]
    literal = _literal_address(host)
    if literal is None:
        return _normalised_name(host) in entries
    networks = [entry for entry in entries if not isinstance(entry, str)]
    return _in_networks(literal, networks)


def _allow_entry(entry: str) -> str | IPNetwork:
    """One allow-list entry: a lower-case host name, or a network (an address is a /32 or
    /128 network)."""
    text = entry.strip()
    try:
        return ipaddress.ip_network(text)
    except ValueError as error:
        if "/" in text or _literal_address(text) is not None:
            raise ValueError(f"allow-list entry {text!r} is not a valid network: {error}") from None
    name = _normalised_name(text)
    if _is_host_name(name):
        return name
    raise ValueError(
        f"allow-list entry {text!r} is not a host name, an IP address or a CIDR network"
    )


def _is_host_name(name: str) -> bool:
    # An all-numeric last label would be read as an IPv4 address in shorthand ("10.1").
    return _HOST_NAME.fullmatch(name) is not None and not name.rsplit(".", 1)[-1].isdigit()


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _normalised_name(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _display(url: httpx.URL) -> str:
    """The URL for messages, without any credentials it carries."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)

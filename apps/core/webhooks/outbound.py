"""Outbound HTTP for webhooks: which addresses the platform may call, and a
POST that connects to exactly the address it checked.

The platform sends webhooks from inside the lab network, so a URL must not
lead it to loopback, link-local (cloud metadata at 169.254.169.254), private,
multicast, reserved or unspecified addresses. Checking the host name is not
enough: a name can resolve to a private address, and it can resolve to a
public address when checked and to a private one when the HTTP library looks
it up again (DNS rebinding). So a send resolves the name once, checks every
address it got, and connects to the first one itself, sending the original
name in the Host header and as the TLS server name (certificates are still
verified against the name). Redirects are never followed and environment
proxies are not used.

Hosts named in ``allowed_hosts`` (the ``WEBHOOK_ALLOWED_HOSTS`` setting)
skip the address check, for receivers an operator deliberately runs inside
the network. No Django in here.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv4 written the ways inet_aton (and so the resolver and browsers) accepts:
# 2130706433, 0177.0.0.1, 0x7f.1, 127.1 — all of them 127.0.0.1.
_IPV4_FORMS = re.compile(r"^[0-9a-fA-FxX.]+$")
# IPv4 addresses reachable through IPv6 wrappers: NAT64 translates these to
# the embedded address, so they are checked as that address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DestinationRefused(Exception):
    """The URL leads to an address the platform does not send webhooks to."""


@dataclass(frozen=True)
class PostResult:
    status_code: int
    excerpt: str
    address: str


def host_is_allowed(host: str, allowed_hosts) -> bool:
    host = host.lower().rstrip(".").strip("[]")
    return any(host == entry.lower().rstrip(".").strip("[]") for entry in allowed_hosts or () if entry)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any form the resolver would accept, or None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if not _IPV4_FORMS.match(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _embedded_ipv4(ip: IPAddress) -> IPAddress | None:
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why the platform must not connect to ``ip``, or None when it is a public unicast address."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None and (reason := address_refusal(embedded)):
        return reason
    for reason, flagged in (
        ("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast), ("private", ip.is_private), ("reserved", ip.is_reserved),
    ):
        if flagged:
            return f"{ip} is a {reason} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def resolve_checked(host: str, port: int, *, allowed_hosts=()) -> list[IPAddress]:
    """Every address ``host`` resolves to, once; raises DestinationRefused
    when any of them is not public (unless the host is allowed). Raises
    OSError (socket.gaierror) when the name does not resolve."""
    literal = parse_ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))
        if not addresses:
            raise socket.gaierror(f"{host} has no address")
    if host_is_allowed(host, allowed_hosts):
        return addresses
    for address in addresses:
        if reason := address_refusal(address):
            raise DestinationRefused(f"{host} resolves to {address}: {reason}; webhooks only go to public "
                                     f"addresses unless WEBHOOK_ALLOWED_HOSTS names the host.")
    return addresses


def check_url(url: str, *, allowed_hosts=()) -> None:
    """Refuse a URL whose host is (or now resolves to) a non-public address.
    A name that does not resolve yet passes: every send checks again."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        resolve_checked(parts.hostname or "", port, allowed_hosts=allowed_hosts)
    except DestinationRefused:
        raise
    except OSError:
        return


def post_pinned(url: str, *, body: bytes, headers: dict, timeout: float, allowed_hosts=(),
                excerpt_bytes: int = 2048) -> PostResult:
    """POST ``body`` to ``url`` through the address checked for it, without
    following redirects. Raises DestinationRefused, OSError or
    urllib3.exceptions.HTTPError."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    address = str(resolve_checked(host, port, allowed_hosts=allowed_hosts)[0])
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    options = {"port": port, "timeout": urllib3.Timeout(connect=timeout, read=timeout), "retries": False,
               "maxsize": 1}
    if https:
        pool = urllib3.HTTPSConnectionPool(address, server_hostname=host, assert_hostname=host,
                                           cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(), **options)
    else:
        pool = urllib3.HTTPConnectionPool(address, **options)
    with pool:
        response = pool.urlopen("POST", path, body=body, headers={**headers, "Host": parts.netloc}, redirect=False,
                                retries=False, preload_content=False, assert_same_host=False)
        try:
            excerpt = response.read(excerpt_bytes, decode_content=True).decode("utf-8", "replace")
        finally:
            response.release_conn()
    return PostResult(status_code=response.status, excerpt=excerpt, address=address)

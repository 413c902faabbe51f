"""Where the service may send a request of its own (an inbox's forward destinations): the
check made when a URL is registered, as a pure function (no DNS, no I/O).

It refuses what can be known from the URL alone: another scheme, credentials in the URL,
an address literal inside the network (private, loopback, link-local, reserved) and the
cloud metadata addresses, and names that only ever mean this machine (`localhost`). A name
that resolves inside the network is refused when each request is sent
(chalicelib/pipeline/webhooks.py resolves once, checks the address and connects to it), so
a DNS answer that changes after registration gains nothing.

`allow_private` is the local stack's and the tests' setting (WEBHOOK_ALLOW_PRIVATE_TARGETS):
there, http and inside addresses are allowed (the receivers listen on 127.0.0.1); the
metadata addresses never are. On AWS a destination must be https.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
                      ipaddress.ip_address("169.254.170.2")})
MAX_URL_LENGTH = 2048


def refusal(url: str, allow_private: bool) -> str | None:
    """Why `url` may not be a destination, or None when it may."""
    if len(url) > MAX_URL_LENGTH:
        return f"a destination URL has at most {MAX_URL_LENGTH} characters"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return "a destination URL has no spaces or control characters"
    parts = urlsplit(url)
    allowed = ("http", "https") if allow_private else ("https",)
    if parts.scheme.lower() not in allowed:
        return f"a destination must be an {' or '.join(allowed)} URL"
    if parts.username is not None or parts.password is not None:
        return "a destination URL cannot carry credentials (user:password@)"
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        return "the destination's port is not a valid port number"
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "a destination URL needs a host"
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        if not allow_private and (host == "localhost" or host.endswith(".localhost")):
            return f"{host} is this machine: not a destination"
        return None
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:10.0.0.1 is 10.0.0.1
        ip = ip.ipv4_mapped
    if ip in METADATA:
        return f"{ip} is a cloud metadata address"
    if not allow_private and not ip.is_global:
        return f"{ip} is a private, loopback, link-local or reserved address"
    return None

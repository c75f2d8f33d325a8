"""Who is on the other end: the TCP peer, or, behind a trusted reverse proxy, the address it names.

``X-Forwarded-For`` is believed only when the TCP peer is one of ``security.trusted_proxies``; then
the client is the rightmost hop that is not itself a trusted proxy (every hop left of it could have
been written by the client). A hop that is not an IP address makes the client unknown (""), which
no allowlist matches. Without trusted proxies the header is ignored entirely, so a client cannot
claim to sit in the operator room by sending it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from access.rules import IpNetwork, in_networks


@dataclass(frozen=True, slots=True)
class Origin:
    address: str
    scheme: str | None  # "https"/"http" from a trusted proxy's X-Forwarded-Proto, else None


def _ip(text: str) -> str | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def resolve(
    peer: str | None,
    forwarded_for: Iterable[str],
    forwarded_proto: Iterable[str],
    trusted: tuple[IpNetwork, ...],
) -> Origin:
    """The client address (and scheme) of a request whose TCP peer is `peer`."""
    if not trusted or not in_networks(peer, trusted):
        return Origin(peer or "", None)
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    address = peer or ""
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            address = ""
            break
        address = ip
        if not in_networks(ip, trusted):
            break
    protos = [p.strip().lower() for value in forwarded_proto for p in value.split(",") if p.strip()]
    scheme = protos[-1] if protos and protos[-1] in ("http", "https") else None
    return Origin(address, scheme)

"""Pure access rules: who may use a page or API, from where, and how often one may try to log in.

No I/O here: the aiohttp middleware in access/web.py asks these functions and turns the
answers into responses. Everything time-dependent takes the injected clock's `now`.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from cti.core.clock import require_aware
from cti.core.principal import Principal, Role

STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPERATOR_ROOM_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR})

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Access:
    """What a route declares. `roles=None` with `public=True` means anyone (e.g. the login page)."""

    roles: frozenset[Role] | None = None  # None: any authenticated role
    public: bool = False
    operator_room_only: bool = False  # everyone, even anonymous, must come from the operator room
    # False only for the login endpoint: it is protected by SameSite=Strict plus the Origin check,
    # and must work while an old session cookie is still around.
    session_csrf: bool = True


@dataclass(frozen=True, slots=True)
class Denial:
    status: int
    code: str
    message: str  # Japanese (users see Japanese only)


NOT_LOGGED_IN = Denial(401, "not_logged_in", "ログインしてください。")
WRONG_ROLE = Denial(403, "forbidden_role", "この機能を使う権限がありません。")
OUTSIDE_ROOM = Denial(403, "outside_operator_room", "この画面はオペレーター室のネットワークからのみ利用できます。")
CSRF_FAILED = Denial(403, "csrf_failed", "不正なリクエストです。画面を再読み込みしてください。")
BAD_ORIGIN = Denial(403, "bad_origin", "許可されていない送信元です。")


def parse_networks(cidrs: Iterable[str]) -> tuple[IpNetwork, ...]:
    nets: list[IpNetwork] = []
    for text in cidrs:
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a CIDR network: {exc}") from None
    return tuple(nets)


def in_networks(client_ip: str | None, networks: Iterable[IpNetwork]) -> bool:
    """True when the client address is inside one of the networks (IPv4-mapped IPv6 unwrapped)."""
    if not client_ip:
        return False
    try:
        addr = ipaddress.ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in networks)


def normalise_origin(origin: str) -> str | None:
    """scheme://host[:port], lower-cased, default ports dropped; None when not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def origin_allowed(origin: str | None, allowed: Iterable[str], *, require: bool) -> bool:
    """Origin header check. Without a header: allowed only when not `require`d (non-browser clients)."""
    if origin is None:
        return not require
    got = normalise_origin(origin)
    if got is None:
        return False
    return any(got == normalise_origin(a) for a in allowed)


def csrf_ok(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


def decide(
    access: Access,
    principal: Principal | None,
    *,
    from_operator_room: bool,
) -> Denial | None:
    """The one access decision for a route: None means allowed.

    Order: operator-room network (for room-only routes), then login, then operator/supervisor
    confinement to the room, then role.
    """
    if access.operator_room_only and not from_operator_room:
        return OUTSIDE_ROOM
    if access.public:
        return None
    if principal is None:
        return NOT_LOGGED_IN
    if principal.role in OPERATOR_ROOM_ROLES and not from_operator_room:
        return OUTSIDE_ROOM
    if access.roles is not None and principal.role not in access.roles:
        return WRONG_ROLE
    return None


@dataclass(frozen=True, slots=True)
class Reservation:
    """One login attempt counted against its keys before the password is checked."""

    keys: tuple[str, ...]
    at: datetime


@dataclass
class LoginThrottle:
    """At most `max_failures` login attempts that did not succeed, per key (account, client IP),
    within `window`.

    An attempt is *reserved* (counted) before its password is checked and un-counted only when it
    succeeds, so concurrent guesses cannot all pass the check before any of them has failed:
    `reserve` decides and counts in one synchronous step (nothing else runs on the event loop in
    between). Memory is bounded: keys whose attempts all left the window are dropped, and at most
    `max_keys` keys are tracked (the oldest forgotten first).
    """

    max_failures: int
    window: timedelta
    max_keys: int = 100_000
    _attempts: dict[str, deque[datetime]] = field(default_factory=dict)

    def reserve(self, keys: Iterable[str], now: datetime) -> Reservation | int:
        """Count an attempt on every key, or (when one key is at its limit) the seconds to wait."""
        require_aware(now, "now")
        keys = tuple(keys)
        wait = self.retry_after(keys, now)
        if wait is not None:
            return wait
        self.record_failure(keys, now)
        return Reservation(keys, now)

    def succeeded(self, reservation: Reservation, account: str | None = None) -> None:
        """The reserved attempt logged in: un-count it, and forget the account's failures."""
        for key in reservation.keys:
            times = self._attempts.get(key)
            if times is not None:
                try:
                    times.remove(reservation.at)
                except ValueError:  # already left the window
                    pass
                if not times:
                    del self._attempts[key]
        if account is not None:
            self.clear(account)

    def retry_after(self, keys: Iterable[str], now: datetime) -> int | None:
        """Seconds until another attempt is allowed, or None when allowed now."""
        require_aware(now, "now")
        worst: float | None = None
        for key in keys:
            times = self._prune(key, now)
            if times is not None and len(times) >= self.max_failures:
                wait = (times[0] + self.window - now).total_seconds()
                worst = wait if worst is None else max(worst, wait)
        if worst is None:
            return None
        return max(1, int(worst + 0.999))

    def record_failure(self, keys: Iterable[str], now: datetime) -> None:
        require_aware(now, "now")
        for key in keys:
            times = self._prune(key, now)
            if times is None:
                if len(self._attempts) >= self.max_keys:
                    self._attempts.pop(next(iter(self._attempts)))
                times = self._attempts[key] = deque()
            times.append(now)
            while len(times) > self.max_failures:
                times.popleft()

    def clear(self, key: str) -> None:
        self._attempts.pop(key, None)

    def _prune(self, key: str, now: datetime) -> deque[datetime] | None:
        times = self._attempts.get(key)
        if times is None:
            return None
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._attempts[key]
            return None
        return times


def account_key(user_id: str) -> str:
    return f"user:{user_id.strip().lower()}"


def ip_key(client_ip: str | None) -> str:
    return f"ip:{client_ip or '?'}"
